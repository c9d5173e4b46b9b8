using RetinaNet.Data;
using RetinaNet.Data.Imaging;
using RetinaNet.Data.Loading;
using Xunit;

namespace RetinaNet.Tests.Data;

/// <summary>Inference batches grouped by the padded shape of their images: the shapes and the batches by
/// hand.</summary>
public class ShapeOrderedBatchesTests
{
    readonly string dir = Paths.TempDir();

    static readonly (int Height, int Width) Landscape = (896, 1152), Portrait = (1152, 896);

    Sample Png(string name, int width, int height)
    {
        var path = Path.Combine(dir, name);
        ImageEncoder.SavePng(new RgbImage(width, height, new byte[width * height * 3]), path);
        return new Sample(0, 0, path, null, null, [], []);
    }

    static (int, int)? Padded(Sample sample) => DetectionLoader.PaddedShape(sample, 800, 1333, 128);

    [Fact]
    public void PaddedShapeIsTheResizedImageRoundedUpToTheStride()
    {
        // 640x480: ratio 800/480, floor(1066.7) x 800, padded to multiples of 128
        Assert.Equal(Landscape, Padded(Png("l.png", 640, 480)));
        Assert.Equal(Portrait, Padded(Png("p.png", 480, 640)));
        // 2000x500: the long side caps the ratio at 1333/2000: 1333 x 333 -> 1408 x 384
        Assert.Equal((384, 1408), Padded(Png("w.png", 2000, 500)));
        // exif_6.jpg stores 32x48 and turns upright to 48x32 (as the decoder gives it): ratio 25, 1200 x 800
        Assert.Equal((896, 1280), Padded(new Sample(0, 0, Paths.Fixture("images", "exif_6.jpg"), null, null, [], [])));
        // an annotation's size wins over the file, which need not exist
        Assert.Equal(Portrait, Padded(new Sample(0, 0, "/nowhere.jpg", 480, 640, [], [])));
        Assert.Null(Padded(new Sample(0, 0, Path.Combine(dir, "missing.jpg"), null, null, [], [])));
        Assert.Null(Padded(new Sample(0, 0, TestImages.WriteText(dir, "bad.jpg", "not an image"), null, null, [], [])));
    }

    static List<int[]> Drain(Func<BatchPlan?> plan)
    {
        var batches = new List<int[]>();
        while (plan() is BatchPlan b) batches.Add(b.Indices);
        return batches;
    }

    [Fact]
    public void BatchesHoldOneShapeAndEveryImageOnce()
    {
        // 0 2 4 6 8 landscape, 1 3 5 7 portrait, 9 unknown
        (int, int)? Shape(int i) => i == 9 ? null : i % 2 == 0 ? Landscape : Portrait;
        var batches = Drain(DetectionLoader.OnePassByShape(new ShardedSampler(10, shuffle: false), 2, Shape));
        // full batches of one shape, then the rest (8, 9) together
        Assert.Equal(new[] { new[] { 0, 2 }, [4, 6], [1, 3], [5, 7], [8, 9] }, batches);
        Assert.Equal(Enumerable.Range(0, 10), batches.SelectMany(b => b).Order());
        // in order when the shapes agree: a plain one pass
        var same = Drain(DetectionLoader.OnePassByShape(new ShardedSampler(5, shuffle: false), 2, _ => Landscape));
        Assert.Equal(new[] { new[] { 0, 1 }, [2, 3], [4] }, same);
    }

    [Fact]
    public void ShardPaddingStaysMarked()
    {
        // rank 1 of 2 over 5 images: indices 1, 3 and the wrap-around repeat of 0, marked as padding
        var plan = DetectionLoader.OnePassByShape(new ShardedSampler(5, 1, 2, shuffle: false), 4,
            i => i == 0 ? Landscape : Portrait);
        var batch = plan()!;
        Assert.Equal([0, 1, 3], batch.Indices);
        Assert.Equal([true, false, false], batch.Padding);
        Assert.Null(plan());
    }
}

/// <summary>Batches planned for a GPU, where a new input shape costs (<see cref="ShapeBatches"/>): the pixels each
/// choice costs, worked out by hand.</summary>
public class CostedShapeBatchesTests
{
    static readonly (int, int) Square = (100, 100), Wide = (100, 200), Tall = (200, 100); // 10,000 / 20,000 pixels

    static List<BatchPlan> Plan(int batch, long newShapePixels, params (int, int)[] shapes)
        => ShapeBatches.Plan([.. Enumerable.Range(0, shapes.Length).Select(i => new ShardEntry(i, false))], batch,
            i => shapes[i], newShapePixels);

    [Fact]
    public void ARareShapeIsPaddedIntoTheLargerShapeWhereThatSavesTheMostPixels()
    {
        // batch 2, a new shape costs 15,000 pixels. Square (image 4) fits in Wide (0-3) and in Tall (5).
        // Square -> Wide: 15,000 (one shape fewer) + 10,000 (Square's lone batch filled) - 15,000 (Wide's 5th image
        //   starts a lone batch: a 20,000-pixel fill or a 15,000 new shape) - 10,000 (padding 10,000 to 20,000) = 0
        // Square -> Tall: 15,000 + 10,000 + 15,000 (Tall's lone batch is whole now) - 10,000 = 30,000: taken
        var plans = Plan(2, 15_000, Wide, Wide, Wide, Wide, Square, Tall);
        Assert.Equal(new[] { new[] { 0, 1 }, [2, 3], [4, 5] }, plans.Select(p => p.Indices));
        Assert.Equal(new (int, int)?[] { Wide, Wide, Tall }, plans.Select(p => p.Canvas));
        Assert.All(plans, p => Assert.Equal([false, false], p.Padding));
    }

    [Fact]
    public void PaddingThatCostsAsMuchAsANewShapeIsNotDone()
    {
        // Square (0, 1) -> Wide (2, 3): a shape's cost - 2 x 10,000 padded pixels (no partial batches either way)
        var plans = Plan(2, 20_000, Square, Square, Wide, Wide);
        Assert.Equal(new (int, int)?[] { Square, Wide }, plans.Select(p => p.Canvas));
        plans = Plan(2, 20_001, Square, Square, Wide, Wide);
        Assert.Equal(new[] { new[] { 0, 1 }, [2, 3] }, plans.Select(p => p.Indices));
        Assert.Equal(new (int, int)?[] { Wide, Wide }, plans.Select(p => p.Canvas));
        // one Square (0) -> Wide (1, 2): 15,000 + 10,000 (its filled batch) + 0 - 15,000 (Wide's lone third image
        // runs as a new batch size) - 10,000 = 0: no saving, no merge
        plans = Plan(2, 15_000, Square, Wide, Wide);
        Assert.Equal(new (int, int)?[] { Square, Wide }, plans.Select(p => p.Canvas));
    }

    [Fact]
    public void ALastPartialBatchIsFilledWithItsFirstImageWhereThatCostsLessThanANewBatchSize()
    {
        // 3 Squares in batches of 2: the lone third is filled (10,000 pixels) when a shape costs 15,000 ...
        var plans = Plan(2, 15_000, Square, Square, Square);
        Assert.Equal(new[] { new[] { 0, 1 }, [2, 2] }, plans.Select(p => p.Indices));
        Assert.Equal([false, true], plans[1].Padding);
        // ... and runs alone when a shape costs 5,000
        plans = Plan(2, 5_000, Square, Square, Square);
        Assert.Equal(new[] { new[] { 0, 1 }, [2] }, plans.Select(p => p.Indices));
        Assert.Equal(new (int, int)?[] { Square, Square }, plans.Select(p => p.Canvas));
    }

    [Fact]
    public void UnknownShapesComeLastWithNoCanvasAndShardPaddingStaysMarked()
    {
        var entries = new[] { new ShardEntry(3, false), new ShardEntry(4, false), new ShardEntry(0, true) };
        var plans = ShapeBatches.Plan(entries, 2, i => i == 4 ? null : Square, 15_000);
        Assert.Equal(new[] { new[] { 3, 0 }, [4] }, plans.Select(p => p.Indices));
        Assert.Equal([false, true], plans[0].Padding);
        Assert.Equal(new (int, int)?[] { Square, null }, plans.Select(p => p.Canvas));
    }

    [Fact]
    public void ACanvasIsTheLeastABatchIsPaddedTo()
    {
        PreparedImage Image(int height, int width) => new(0, 0,
            new RetinaNet.Data.Transforms.ImageWithBoxes(TorchSharp.torch.zeros(3, height, width,
                TorchSharp.torch.ScalarType.Byte), [], []), width, height);
        using (var batch = HostBatch.Collate([Image(90, 150)], [false], 128, pin: false, atLeast: (256, 128)))
            Assert.Equal(new long[] { 1, 3, 256, 256 }, batch.Pixels.shape); // the image's width wins
        using (var batch = HostBatch.Collate([Image(90, 150)], [false], 128, pin: false))
            Assert.Equal(new long[] { 1, 3, 128, 256 }, batch.Pixels.shape);
    }
}
