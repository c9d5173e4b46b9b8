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
