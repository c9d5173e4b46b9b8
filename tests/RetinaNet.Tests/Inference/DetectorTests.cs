using System.Diagnostics;
using System.Text.Json;
using RetinaNet.Checkpoints;
using RetinaNet.Cli;
using RetinaNet.Data;
using RetinaNet.Data.Imaging;
using RetinaNet.Tests.Export;
using SkiaSharp;
using Xunit;

namespace RetinaNet.Tests.Inference;

/// <summary>The public <see cref="Detector"/>: every input form gives the same detections, they equal what
/// <c>retinanet infer</c> writes for the same files (loader and batching there, one image here), a checkpoint and its
/// ONNX export agree through it, and the sample console project builds and prints them.
/// Bitwise comparisons: not alongside a CPU training, which switches libtorch's oneDNN off process-wide while it
/// runs.</summary>
[Collection("global torch RNG")]
public class DetectorTests
{
    /// <summary>A checkpoint of seeded random weights (scores spread over (0, 1), plenty above 0.05), its FP32 ONNX
    /// export, and images of coloured rectangles of several sizes, not multiples of the stride.</summary>
    static readonly Lazy<(string Model, string Onnx, string[] Images)> Shared = new(() =>
    {
        var dir = Paths.TempDir();
        string model = Path.Combine(dir, "model.pth"), onnx = Path.Combine(dir, "model.onnx");
        using (var m = ExportFixtures.Model("ResNet18FPN"))
        {
            m.UseInferenceSettings(new RetinaNet.Model.InferenceConfig { Resize = 160, MaxSize = 256 });
            Checkpoint.Save(model, m);
        }
        Assert.Equal(0, CommandLine.Run(["export", model, onnx, "--size", "256", "256", "--full-precision"],
            TextWriter.Null, TextWriter.Null));
        Directory.CreateDirectory(Path.Combine(dir, "images"));
        (int W, int H)[] sizes = [(200, 150), (97, 131), (256, 100)];
        var images = sizes.Select((s, i) =>
        {
            var path = Path.Combine(dir, "images", $"{i}.png");
            ImageEncoder.SavePng(Rectangles(s.W, s.H, seed: i), path);
            return path;
        }).ToArray();
        return (model, onnx, images);
    }, LazyThreadSafetyMode.ExecutionAndPublication);

    static RgbImage Rectangles(int width, int height, int seed)
    {
        var random = new Random(seed);
        var pixels = new byte[width * height * 3];
        random.NextBytes(pixels);
        for (int r = 0; r < 6; r++)
        {
            int x = random.Next(width - 20), y = random.Next(height - 20), w = random.Next(10, 60),
                h = random.Next(10, 60);
            var colour = new[] { (byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256) };
            for (int j = y; j < Math.Min(height, y + h); j++)
                for (int i = x; i < Math.Min(width, x + w); i++)
                    for (int c = 0; c < 3; c++) pixels[(j * width + i) * 3 + c] = colour[c];
        }
        return new RgbImage(width, height, pixels);
    }

    static readonly DetectorOptions Cpu = new() { Device = "cpu" };

    [Fact]
    public void PathBytesStreamAndBitmapGiveTheSameDetections()
    {
        var (model, _, images) = Shared.Value;
        using var detector = Detector.Load(model, Cpu);
        foreach (var image in images)
        {
            var expected = detector.Detect(image);
            Assert.NotEmpty(expected);
            Assert.Equal(expected, detector.Detect(File.ReadAllBytes(image)));
            using (var stream = File.OpenRead(image)) Assert.Equal(expected, detector.Detect(stream));
            using var bitmap = SKBitmap.Decode(image);
            Assert.Equal(expected, detector.Detect(bitmap));
            using var bgra = bitmap.Copy(SKColorType.Bgra8888);
            Assert.Equal(expected, detector.Detect(bgra));
        }
    }

    [Fact]
    public void DetectionsEqualWhatInferWritesAndAreInTheImagesPixels()
    {
        var (model, _, images) = Shared.Value;
        var output = Path.Combine(Paths.TempDir(), "detections.json");
        Assert.Equal(0, CommandLine.Run(["infer", model, "--images", Path.GetDirectoryName(images[0])!,
            "--output", output, "--device", "cpu", "--batch", "2"], TextWriter.Null, TextWriter.Null));
        using var json = JsonDocument.Parse(File.ReadAllText(output));
        var names = json.RootElement.GetProperty("images").EnumerateArray()
            .ToDictionary(i => i.GetProperty("id").GetInt64(), i => i.GetProperty("file_name").GetString()!);
        var written = json.RootElement.GetProperty("annotations").EnumerateArray()
            .GroupBy(d => names[d.GetProperty("image_id").GetInt64()])
            .ToDictionary(g => g.Key, g => g.ToList());
        using var detector = Detector.Load(model, Cpu);
        foreach (var image in images)
        {
            var found = detector.Detect(image);
            var expected = written[Path.GetFileName(image)];
            Assert.Equal(expected.Count, found.Count);
            var (width, height) = ImageDecoder.ReadSize(image);
            for (int i = 0; i < found.Count; i++)
            {
                var box = expected[i].GetProperty("bbox").EnumerateArray().Select(v => v.GetSingle()).ToArray();
                Assert.Equal(expected[i].GetProperty("score").GetSingle(), found[i].Score, 5);
                Assert.Equal(box, new[] { found[i].X, found[i].Y, found[i].Width, found[i].Height },
                    (a, b) => Math.Abs(a - b) < 1e-2);
                Assert.InRange(found[i].X + found[i].Width, 0, width + 1e-3);
                Assert.InRange(found[i].Y + found[i].Height, 0, height + 1e-3);
                Assert.Equal($"class {found[i].Class}", found[i].Name);
            }
        }
    }

    [Fact]
    public async Task TheStreamGivesEachImagesDetectionsInOrder()
    {
        var (model, _, images) = Shared.Value;
        var list = images.Concat(images.Reverse()).ToArray();
        foreach (int batch in new[] { 1, 2 })
        {
            using var detector = Detector.Load(model, Cpu with { Batch = batch, Workers = 2 });
            var results = new List<ImageResult>();
            await foreach (var result in detector.DetectAsync(list)) results.Add(result);
            Assert.Equal(list, results.Select(r => r.Image));
            // alone in its batch an image is padded as Detect pads it; with others, to the largest one's size
            if (batch == 1) foreach (var r in results) Assert.Equal(detector.Detect(r.Image), r.Detections);
            else foreach (var r in results) Assert.NotEmpty(r.Detections);
        }
    }

    [Fact]
    public void ConcurrentCallersGetWhatSequentialCallsGet()
    {
        var (model, _, images) = Shared.Value;
        using var detector = Detector.Load(model, Cpu);
        var expected = images.Select(detector.Detect).ToArray();
        var found = new IReadOnlyList<Detection>[12];
        Parallel.For(0, found.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 },
            i => found[i] = detector.Detect(images[i % images.Length]));
        for (int i = 0; i < found.Length; i++) Assert.Equal(expected[i % images.Length], found[i]);
    }

    [Fact]
    public void ACheckpointAndItsOnnxExportDetectAlike()
    {
        var (model, onnx, images) = Shared.Value;
        using var torch = Detector.Load(model, Cpu);
        using var ort = Detector.Load(onnx, Cpu);
        Assert.Equal((160, 256), (ort.Settings.Resize, ort.Settings.MaxSize)); // from the export's metadata
        foreach (var image in images[..2]) // the third one's padded size differs from the export's fixed canvas
        {
            var a = torch.Detect(image).Take(10).ToList();
            var b = ort.Detect(image).Take(10).ToList();
            Assert.Equal(a.Count, b.Count);
            for (int i = 0; i < a.Count; i++)
            {
                Assert.Equal(a[i].Class, b[i].Class);
                Assert.Equal(a[i].Score, b[i].Score, 3);
                Assert.Equal(a[i].X, b[i].X, 0.05);
                Assert.Equal(a[i].Width, b[i].Width, 0.05);
            }
        }
    }

    /// <summary>On a GPU (bf16 weights, channels-last, the model thread): the CPU's detections, to
    /// bf16's precision.</summary>
    [GpuFact]
    public async Task OnAGpuTheDetectionsAreTheCpusToBf16Precision()
    {
        var (model, _, images) = Shared.Value;
        using var cpu = Detector.Load(model, Cpu with { ScoreThreshold = 0.2 });
        foreach (var full in new[] { true, false })
        {
            using var gpu = Detector.Load(model,
                new DetectorOptions { Device = "cuda", ScoreThreshold = 0.2, FullPrecision = full });
            foreach (var image in images)
            {
                var a = cpu.Detect(image);
                var b = gpu.Detect(image);
                Assert.NotEmpty(a);
                Assert.InRange(b.Count, a.Count * 0.8, a.Count * 1.2 + 1);
                Assert.Equal(a[0].Score, b[0].Score, full ? 1e-3 : 2e-2);
            }
            int streamed = 0;
            await foreach (var r in gpu.DetectAsync(images)) streamed += r.Detections.Count > 0 ? 1 : 0;
            Assert.Equal(images.Length, streamed);
        }
    }

    [Fact]
    public void BadInputIsOneClearError()
    {
        var (model, onnx, _) = Shared.Value;
        var missing = Assert.Throws<FileNotFoundException>(() => Detector.Load(model + ".nope"));
        Assert.Contains(".nope", missing.Message);
        var fixedGraph = Assert.Throws<ArgumentException>(() => Detector.Load(onnx, Cpu with { ScoreThreshold = 0.5 }));
        Assert.Contains("post-processing is part of an exported model", fixedGraph.Message);
        Assert.Throws<ArgumentException>(() => Detector.Load(model, Cpu with { Device = "tpu" }));
        using var detector = Detector.Load(model, Cpu);
        var corrupt = Assert.Throws<BadInputException>(() =>
            detector.Detect(new byte[] { 0x89, 0x50, 0x4E, 0x47, 1, 2, 3 }));
        Assert.Contains("image", corrupt.Message);
        detector.Dispose();
        Assert.Throws<ObjectDisposedException>(() => detector.Detect(Shared.Value.Images[0]));
    }

    [Fact]
    public void TheSampleProjectBuildsAndPrintsTheDetections()
    {
        var (model, _, images) = Shared.Value;
        var root = Paths.RepositoryRoot();
        var output = Path.Combine(Paths.TempDir(), "sample");
        var (code, text) = Run("dotnet", ["build", Path.Combine(root, "samples", "DetectObjects"), "-c", "Release",
            "-o", output, "-nologo", "-v", "q"]);
        Assert.True(code == 0, text);
        (code, text) = Run("dotnet", [Path.Combine(output, "DetectObjects.dll"), model, images[0]]);
        Assert.True(code == 0, text);
        using var detector = Detector.Load(model);
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var expected = detector.Detect(images[0]);
        Assert.NotEmpty(expected);
        Assert.Equal(expected.Count, lines.Length);
        Assert.StartsWith($"{images[0]}: {expected[0].Name} {expected[0].Score:F3} at x={expected[0].X:F1}", lines[0]);
    }

    static (int Code, string Output) Run(string file, string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout + stderr.Result);
    }
}
