using RetinaNet.Checkpoints;
using RetinaNet.Cli;
using RetinaNet.Data;
using RetinaNet.Data.Imaging;
using RetinaNet.Data.Transforms;
using RetinaNet.Model;
using RetinaNet.OnnxRuntime;
using RetinaNet.Tests.Export;
using Xunit;

namespace RetinaNet.Tests.OnnxRuntime;

/// <summary>The libtorch-free deployment path: its antialiased bilinear against a hand-computed case and byte for
/// byte against libtorch's (the training and checkpoint path), and <see cref="OrtDetector"/> against the library's
/// <see cref="Detector"/> on the same exported file; the assembly references no TorchSharp.</summary>
public class OrtDetectorTests
{
    [Fact]
    public void ShrinkingFourPixelsToTwoWeighsThemAsPilDoes()
    {
        // scale 2: output 0 is centred at 1.0 with triangle weights 0.75, 0.75, 0.25 over inputs 0..2 (normalised by
        // 1.75), output 1 at 3.0 with 0.25, 0.75, 0.75 over inputs 1..3: (0·3 + 70·3 + 140)/7 = 50,
        // (70 + 140·3 + 210·3)/7 = 160
        var row = new RgbImage(4, 1, [0, 0, 0, 70, 70, 70, 140, 140, 140, 210, 210, 210]);
        var half = AntialiasedResize.Bilinear(row, 2, 1);
        Assert.Equal(new byte[] { 50, 50, 50, 160, 160, 160 }, half.Pixels);
        var column = AntialiasedResize.Bilinear(new RgbImage(1, 4, row.Pixels), 1, 2);
        Assert.Equal(half.Pixels, column.Pixels);
    }

    [Theory]
    [InlineData(200, 150, 160, 120)]  // shrink both
    [InlineData(97, 131, 118, 160)]   // enlarge both
    [InlineData(640, 480, 333, 250)]  // shrink by a non-integer factor
    [InlineData(300, 100, 300, 41)]   // one pass only
    public void ResizingMatchesLibtorchsAntialiasedBilinear(int width, int height, int toWidth, int toHeight)
    {
        var pixels = new byte[width * height * 3];
        new Random(width * 7 + height).NextBytes(pixels);
        // smooth noise (a natural image's statistics: neighbours alike), not white noise
        for (int pass = 0; pass < 2; pass++)
            for (int i = 3; i < pixels.Length; i++) pixels[i] = (byte)((pixels[i] + pixels[i - 3]) / 2);
        var image = new RgbImage(width, height, pixels);
        var ours = AntialiasedResize.Bilinear(image, toWidth, toHeight).Pixels;
        using var chw = image.ToTensor();
        using var torchResized = ResizeShorterSide.Bilinear(chw, toHeight, toWidth);
        using var hwc = torchResized.permute(1, 2, 0).contiguous();
        var theirs = hwc.data<byte>().ToArray();
        // every byte: the same weights, rounding and pass order as libtorch's AVX2 uint8 path
        Assert.Equal(theirs, ours);
    }

    [Fact]
    public void DetectsWhatTheLibraryDetectsOnTheSameExport()
    {
        var dir = Paths.TempDir();
        string model = Path.Combine(dir, "model.pth"), onnx = Path.Combine(dir, "model.onnx");
        using (var m = ExportFixtures.Model("ResNet18FPN"))
        {
            m.UseCategories([new(4, "cell"), new(9, "nucleus"), new(17, "debris")]);
            m.UseInferenceSettings(new InferenceConfig { Resize = 160, MaxSize = 256 });
            Checkpoint.Save(model, m);
        }
        Assert.Equal(0, CommandLine.Run(["export", model, onnx, "--size", "256", "256", "--full-precision"],
            TextWriter.Null, TextWriter.Null));
        using var ours = OrtDetector.Load(onnx);
        using var library = Detector.Load(onnx, new DetectorOptions { Device = "cpu" });
        Assert.Equal((256, 256), ours.InputSize);
        Assert.Equal(library.Categories, ours.Categories);

        // 200x160 needs no resize (its shorter side is 160 already); the others are resized, ours here and libtorch's
        // there, to the same bytes: the same input, the same graph, the same detections
        foreach (var (w, h) in new[] { (200, 160), (200, 150), (97, 131) })
        {
            var pixels = new byte[w * h * 3];
            new Random(w + h).NextBytes(pixels);
            var image = new RgbImage(w, h, pixels);
            var expected = library.Detect([image])[0];
            Assert.NotEmpty(expected);
            Assert.Equal(expected, ours.Detect([image])[0]);
        }
        // several images in one call, each as alone
        var images = new[] { (120, 90), (64, 200) }
            .Select(s => new RgbImage(s.Item1, s.Item2, RandomBytes(s.Item1 * s.Item2 * 3))).ToList();
        var batch = ours.Detect(images);
        for (int i = 0; i < images.Count; i++) Assert.Equal(ours.Detect([images[i]])[0], batch[i]);
    }

    static byte[] RandomBytes(int n)
    {
        var bytes = new byte[n];
        new Random(n).NextBytes(bytes);
        return bytes;
    }

    [Fact]
    public void WhatIsNotAnExportedDetectorIsRefusedWithOneLine()
    {
        var dir = Paths.TempDir();
        var junk = Path.Combine(dir, "junk.onnx");
        File.WriteAllBytes(junk, [1, 2, 3, 4]);
        var bad = Assert.Throws<InvalidDataException>(() => OrtDetector.Load(junk));
        Assert.StartsWith($"{junk}: ONNX Runtime cannot load it", bad.Message);
        Assert.DoesNotContain('\n', bad.Message);
        Assert.Throws<FileNotFoundException>(() => OrtDetector.Load(Path.Combine(dir, "missing.onnx")));

        string model = Path.Combine(dir, "m.pth"), raw = Path.Combine(dir, "raw.onnx");
        using (var m = ExportFixtures.Model("ResNet18FPN")) Checkpoint.Save(model, m);
        Assert.Equal(0, CommandLine.Run(["export", model, raw, "--size", "128", "128", "--raw-heads"],
            TextWriter.Null, TextWriter.Null));
        var rawHeads = Assert.Throws<InvalidDataException>(() => OrtDetector.Load(raw));
        Assert.Contains("re-export it without --raw-heads", rawHeads.Message);
    }

    [Fact]
    public void TheAssemblyNeedsNoLibtorch() =>
        Assert.DoesNotContain(typeof(OrtDetector).Assembly.GetReferencedAssemblies(),
            a => a.Name!.StartsWith("TorchSharp"));
}
