using RetinaNet.Data.Coco;
using RetinaNet.Evaluation;
using Xunit;

namespace RetinaNet.Tests.Evaluation;

/// <summary>COCO's run-length masks on cases worked out by hand (the fixtures in PycocotoolsFixtureTests check the
/// rasterisation against pycocotools itself).</summary>
public class MaskRleTests
{
    [Fact]
    public void BoxWithIntegerCornersCoversItsPixels()
    {
        // rleFrPoly on [10, 10, 20, 20] at 100x100: the top edge crosses column centres at x = 10..29 (y rounds up to
        // 10), the bottom edge at the same columns (y = 30), so each column x holds rows 10..29: runs start at
        // 1010 (column 10, row 10), then 20 set, 80 clear, ..., and 7070 clear after column 29's last row.
        var mask = MaskRle.FromBox(10, 10, 20, 20, 100, 100);
        var expected = new List<uint> { 1010 };
        for (int column = 10; column < 29; column++) expected.AddRange([20, 80]);
        expected.AddRange([20, 7070]);
        Assert.Equal(expected, mask.Counts);
        Assert.Equal(400, mask.Area);
    }

    [Fact]
    public void IouOfRunsCountsSharedPixelsAndCrowdUsesTheDetectionsArea()
    {
        // 1x10 image: A = pixels 2..5, B = pixels 4..7; they share 4 and 5, together cover 2..7.
        var a = new MaskRle(1, 10, [2, 4, 4]);
        var b = new MaskRle(1, 10, [4, 4, 2]);
        Assert.Equal(2.0 / 6, MaskRle.Iou(a, b, crowd: false), 15);
        Assert.Equal(2.0 / 4, MaskRle.Iou(a, b, crowd: true), 15);
        Assert.Equal(0, MaskRle.Iou(a, new MaskRle(1, 10, [7, 3]), crowd: false));
        Assert.Equal(1, MaskRle.Iou(b, b, crowd: false));
        // sizes differ, as pycocotools says
        Assert.Equal(-1, MaskRle.Iou(a, new MaskRle(2, 5, [2, 4, 4]), crowd: false));
        Assert.Equal([2u, 6, 2], MaskRle.Union([a, b]).Counts);
        // a mask starting with set pixels keeps its empty first run: pixels 0, 1 and 4, 5
        Assert.Equal([0u, 2, 2, 2, 4],
            MaskRle.Union([new MaskRle(1, 10, [0, 2, 8]), new MaskRle(1, 10, [4, 2, 4])]).Counts);
    }

    [Fact]
    public void CompressedCountsDecodeWithTheirDifferencesAndSigns()
    {
        // "537O": 5, 3, 7 as they are; from the fourth count on, the difference to the count two before: 2 is stored
        // as 2 - 3 = -1 ('O' = 48 + 31: five bits 11111, the sign bit 0x10 set, no continuation bit 0x20).
        Assert.Equal([5u, 3, 7, 2], MaskRle.FromCompressed("537O", 17, 1).Counts);
        // a count of 40 takes two characters: 40 = 0b1_01000 -> low five bits 01000 with the continuation bit ('X' =
        // 48 + 40), then 1 ('1')
        Assert.Equal([40u, 10], MaskRle.FromCompressed("X1:", 50, 1).Counts);
        Assert.Equal([0u, 9], MaskRle.FromCompressed("09", 3, 3).Counts);
    }

    [Fact]
    public void PolygonsOfOneObjectAreMergedAndFourValuesMeanABox()
    {
        // Two disjoint boxes as polygons: the union has both areas.
        var two = CocoSegmentation.OfPolygons([10, 10, 10, 30, 30, 30, 30, 10], [50, 50, 50, 60, 60, 60, 60, 50]);
        Assert.Equal(400 + 100, MaskRle.Of(two, 100, 100).Area);
        // pycocotools' frPyObjects reads a first entry of 4 values as a box [x, y, w, h], not a 2-point polygon
        Assert.Equal(400, MaskRle.Of(CocoSegmentation.OfPolygons([10, 10, 20, 20]), 100, 100).Area);
        Assert.Throws<ArgumentException>(() => MaskRle.Of(CocoSegmentation.OfPolygons([1, 2]), 10, 10));
    }
}
