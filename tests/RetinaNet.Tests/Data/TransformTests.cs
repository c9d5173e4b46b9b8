using RetinaNet.Data.Loading;
using RetinaNet.Data.Transforms;
using TorchSharp;
using Xunit;
using static RetinaNet.Native.Scalars;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Data;

/// <summary>Every transform keeps boxes on their pixels: a white rectangle is drawn exactly where its box says, the
/// transform runs, and the white pixels' bounding box must equal the transformed box.</summary>
public class TransformTests
{
    static ImageWithBoxes Painted(int w, int h, params (int X1, int Y1, int X2, int Y2)[] boxes)
    {
        var pixels = zeros(3, h, w, ScalarType.Byte);
        foreach (var b in boxes) pixels[.., b.Y1..b.Y2, b.X1..b.X2] = tensor((byte)255);
        return new ImageWithBoxes(pixels, boxes.SelectMany(b => new float[] { b.X1, b.Y1, b.X2, b.Y2 }).ToArray(),
            boxes.Select((_, i) => i).ToArray());
    }

    /// <summary>Bounding box (continuous corners) of the pixels brighter than half in channel 0.</summary>
    static (float X1, float Y1, float X2, float Y2) WhiteExtent(Tensor pixels)
    {
        var mask = pixels[0].gt(Of(127));
        var ys = mask.any(1).nonzero().flatten().data<long>().ToArray();
        var xs = mask.any(0).nonzero().flatten().data<long>().ToArray();
        return (xs.Min(), ys.Min(), xs.Max() + 1, ys.Max() + 1);
    }

    static void AssertBoxOnPixels(ImageWithBoxes image, double tolerance)
    {
        var (x1, y1, x2, y2) = WhiteExtent(image.Pixels);
        Assert.Equal(1, image.Count);
        Assert.InRange(image.Boxes[0], x1 - tolerance, x1 + tolerance);
        Assert.InRange(image.Boxes[1], y1 - tolerance, y1 + tolerance);
        Assert.InRange(image.Boxes[2], x2 - tolerance, x2 + tolerance);
        Assert.InRange(image.Boxes[3], y2 - tolerance, y2 + tolerance);
    }

    [Fact]
    public void FlipMapsXToWidthMinusX()
    {
        using var image = Painted(40, 30, (5, 7, 15, 20));
        new HorizontalFlip(p: 1).Apply(image, new Random(0));
        Assert.Equal(new float[] { 25, 7, 35, 20 }, image.Boxes); // 40 - 15, 40 - 5, by hand
        AssertBoxOnPixels(image, 0);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void QuarterTurnsKeepBoxesOnPixels(int turns)
    {
        using var image = Painted(40, 30, (5, 7, 15, 20));
        RandomRotate90.Rotate(image, turns);
        Assert.Equal(turns % 2 == 1 ? (30, 40) : (40, 30), (image.Width, image.Height));
        AssertBoxOnPixels(image, 0);
        if (turns == 1) Assert.Equal(new float[] { 7, 25, 20, 35 }, image.Boxes); // (x, y) -> (y, W - x), by hand
    }

    [Theory]
    [InlineData(60, 40, 80, 1333, 120, 80)]   // shorter side 40 -> 80: ratio 2
    [InlineData(200, 100, 800, 1000, 1000, 500)] // 800 would make the long side 1600 > 1000: ratio 5
    public void ResizeFollowsOdtkRule(int w, int h, int size, int maxSize, int expectW, int expectH)
    {
        using var image = Painted(w, h, (10, 10, 30, 30));
        new ResizeShorterSide(size, maxSize).Apply(image, new Random(0));
        Assert.Equal((expectW, expectH), (image.Width, image.Height));
        double ratio = (double)expectW / w;
        Assert.Equal(ratio, image.Scale, 9);
        Assert.Equal(new float[] { (float)(10 * ratio), (float)(10 * ratio), (float)(30 * ratio), (float)(30 * ratio) },
            image.Boxes);
        AssertBoxOnPixels(image, 1.0);
    }

    [Fact]
    public void JitteredResizeStaysInRangeAndIsSeeded()
    {
        var sizes = new HashSet<int>();
        for (int seed = 0; seed < 40; seed++)
        {
            using var image = Painted(100, 50, (10, 10, 20, 20));
            new ResizeShorterSide(60, 80, 10_000).Apply(image, new Random(seed));
            Assert.InRange(image.Height, 60, 80);
            sizes.Add(image.Height);
            using var again = Painted(100, 50, (10, 10, 20, 20));
            new ResizeShorterSide(60, 80, 10_000).Apply(again, new Random(seed));
            Assert.Equal(image.Height, again.Height);
        }
        Assert.True(sizes.Count > 5, $"only {sizes.Count} distinct sizes drawn");
    }

    [Fact]
    public void CropKeepsBoxesWhoseCentreIsInside()
    {
        using var image = Painted(100, 80, (10, 10, 30, 30));
        image.ReplaceBoxes([10, 10, 30, 30, 70, 60, 90, 75], [0, 1]);
        BboxSafeCrop.Crop(image, 5, 5, 50, 40);
        Assert.Equal((50, 40), (image.Width, image.Height));
        Assert.Equal(new float[] { 5, 5, 25, 25 }, image.Boxes); // second box's centre (80, 67.5) is outside
        AssertBoxOnPixels(image, 0);
    }

    [Fact]
    public void RandomCropsNeverSeparateBoxesFromPixels()
    {
        for (int seed = 0; seed < 30; seed++)
        {
            using var image = Painted(120, 90, (40, 30, 70, 60));
            new BboxSafeCrop().Apply(image, new Random(seed));
            if (image.Count == 0) continue;
            var b = image.Boxes;
            // the clipped box covers exactly the white pixels left in the window
            AssertBoxOnPixels(image, 0);
            Assert.True(b[0] >= 0 && b[1] >= 0 && b[2] <= image.Width && b[3] <= image.Height);
        }
    }

    [Fact]
    public void TrainingChainKeepsAlignmentUnderEverything()
    {
        var chain = Augmentation.ForTraining(new AugmentationOptions(64, 96, 200, Rotate: true, Crop: true,
            Brightness: 0.1, Contrast: 0.1, Saturation: 0.1, Hue: 0.05));
        for (int seed = 0; seed < 20; seed++)
        {
            using var image = Painted(80, 60, (20, 15, 50, 45));
            chain.Apply(image, new Random(seed));
            if (image.Count == 1) AssertBoxOnPixels(image, 1.0);
        }
    }

    [Fact]
    public void ClipDropsEmptyBoxesAndCountsThem()
    {
        using var image = Painted(50, 40, (0, 0, 10, 10));
        image.ReplaceBoxes([-5, -5, 10, 10, 60, 5, 70, 20, 10, 10, 10, 30], [0, 1, 2]);
        Assert.Equal(2, image.ClipBoxes()); // second lies right of the image, third has no width
        Assert.Equal(new float[] { 0, 0, 10, 10 }, image.Boxes);
        Assert.Equal(new[] { 0 }, image.Classes);
    }

    [Fact]
    public void ColorJitterMatchesTorchvisionFormulasOnValidPixels()
    {
        // 2x2 image, one pixel of padding-free content per image; hue 0 so only the torchvision formulas apply
        var rgb = new float[] { 0.2f, 0.6f, 0.4f, 0.8f, 0.5f, 0.1f, 0.3f, 0.9f, 0.7f, 0.2f, 0.4f, 0.6f };
        using var images = tensor(rgb, [1, 3, 2, 2]);
        using var valid = ones(1, 1, 2, 2);
        using var factors = tensor(new float[] { 1.2f, 0.7f, 1.5f, 0f }, [1, 4]);
        ColorJitter.ApplyBatch(images, factors, valid);
        // reference, written out independently: brightness, contrast (grey mean), saturation (per-pixel grey)
        var p = Enumerable.Range(0, 4).Select(i => new[] { rgb[i], rgb[4 + i], rgb[8 + i] }).ToArray();
        double Grey(double[] c) => 0.2989 * c[0] + 0.587 * c[1] + 0.114 * c[2];
        var q = p.Select(c => c.Select(v => Math.Clamp(v * 1.2, 0, 1)).ToArray()).ToArray();
        double mean = q.Average(Grey);
        q = q.Select(c => c.Select(v => Math.Clamp(0.7 * v + 0.3 * mean, 0, 1)).ToArray()).ToArray();
        q = q.Select(c => { double g = Grey(c); return c.Select(v => Math.Clamp(1.5 * v - 0.5 * g, 0, 1)).ToArray(); })
            .ToArray();
        var actual = images.data<float>().ToArray();
        for (int i = 0; i < 4; i++)
            for (int ch = 0; ch < 3; ch++)
                Assert.Equal(q[i][ch], actual[ch * 4 + i], 4);
    }

    [Fact]
    public void CollatePadsToStrideAndLaysOutTargets()
    {
        var a = new PreparedImage(0, 11, Painted(130, 100, (1, 2, 3, 4)), 130, 100);
        var b = Painted(60, 260, (5, 6, 7, 8));
        b.ReplaceBoxes([5, 6, 7, 8, 10, 10, 20, 20], [1, -2]);
        using var batch = HostBatch.Collate([a, new PreparedImage(1, 12, b, 60, 260)], [false, true], 128, pin: false);
        Assert.Equal(new long[] { 2, 3, 384, 256 }, batch.Pixels.shape); // max h 260 -> 384, max w 130 -> 256
        Assert.Equal(new long[] { 2, 2, 5 }, batch.Targets.shape);
        Assert.Equal(new float[] { 1, 2, 2, 2, 0, -1, -1, -1, -1, -1, 5, 6, 2, 2, 1, 10, 10, 10, 10, -2 },
            batch.Targets.data<float>().ToArray()); // (x, y, w, h, class)
        Assert.Equal(new long[] { 100, 130, 260, 60 }, batch.Sizes.data<long>().ToArray());
        Assert.Equal(0, batch.Pixels[0, 0, 100.., ..].sum().item<long>()); // padding is zero
        Assert.Equal(new[] { false, true }, batch.Padding);
        a.Dispose(); b.Dispose();
    }

    [Fact]
    public void DeviceBatchNormalisesAndZeroesPadding()
    {
        using var image = new ImageWithBoxes(full(3, 2, 3, Of(255), ScalarType.Byte), [], []);
        using var host = HostBatch.Collate([new PreparedImage(0, 1, image, 3, 2)], [false], 4, pin: false);
        using var batch = DeviceBatch.From(host, CPU);
        var x = batch.Images;
        Assert.Equal(new long[] { 1, 3, 4, 4 }, x.shape);
        for (int c = 0; c < 3; c++)
        {
            Assert.Equal((1 - DeviceBatch.Mean[c]) / DeviceBatch.Std[c], x[0, c, 1, 2].item<float>(), 5);
            Assert.Equal(0f, x[0, c, 2, 0].item<float>()); // below the image: padding
            Assert.Equal(0f, x[0, c, 0, 3].item<float>()); // right of the image: padding
        }
    }
}
