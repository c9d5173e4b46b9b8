using RetinaNet.Core;
using RetinaNet.Evaluation;
using Xunit;
using static RetinaNet.Tests.Evaluation.HandGt;

namespace RetinaNet.Tests.Evaluation;

/// <summary>Small cases whose COCOeval results are worked out by hand in the comments.
/// Stats order: AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl.</summary>
public class HandComputedTests
{
    static void AssertStats(double[] expected, CocoEvalResult result)
    {
        for (int i = 0; i < 12; i++) Assertions.Close(expected[i], result.Stats[i], 1e-12, CocoEvalResult.StatNames[i]);
    }

    [Fact]
    public void OnePerfectDetectionHasApOne()
    {
        // One small (400 px) object found exactly: IoU 1 at every threshold, precision 1 at every recall point.
        // Medium and large have no object: -1.
        var gt = Of([Box(1, 1, 1, 10, 10, 20, 20)]);
        var result = CocoEvaluator.Evaluate(gt, [Det(1, 1, 10, 10, 20, 20, 0.9f)]);
        AssertStats([1, 1, 1, 1, -1, -1, 1, 1, 1, 1, -1, -1], result);
    }

    [Fact]
    public void CrowdRegionAbsorbsDetectionsWithoutFalsePositives()
    {
        // Object A (0,0,100,100) and a crowd region B (200,0,100,100). Two boxes inside B score above the true match.
        // Against a crowd, IoU = intersection / detection area = 1 (plain IoU would be 0.25 and 0.16: two false
        // positives first, AP 1/3). Both match B, which may take many detections, and are ignored: AP 1.
        // AR1: the one detection kept per image is the 0.95 box, ignored, so recall 0.
        var gt = Of([Box(1, 1, 1, 0, 0, 100, 100), Box(2, 1, 1, 200, 0, 100, 100, crowd: true)]);
        var result = CocoEvaluator.Evaluate(gt,
        [
            Det(1, 1, 210, 10, 50, 50, 0.95f), Det(1, 1, 250, 50, 40, 40, 0.92f), Det(1, 1, 0, 0, 100, 100, 0.9f),
        ]);
        AssertStats([1, 1, 1, -1, -1, 1, 0, 1, 1, -1, -1, 1], result);
        Assert.Equal(1, result.PerCategory[0].GtCount); // the crowd region is not counted
    }

    [Fact]
    public void AreaRangesUseTheAnnotationsAreaFieldNotTheBox()
    {
        // The box is 100x100 (10000: large) but the file says area 500 (small): small has the object, large none.
        var gt = Of([Box(1, 1, 1, 0, 0, 100, 100, area: 500)]);
        var result = CocoEvaluator.Evaluate(gt, [Det(1, 1, 0, 0, 100, 100, 0.9f)]);
        AssertStats([1, 1, 1, 1, -1, -1, 1, 1, 1, 1, -1, -1], result);
    }

    [Fact]
    public void MaxDetsKeepsTheTopScoringDetectionsPerImage()
    {
        // Two medium objects (2500 px). Detections in input order: a miss (0.5), B (0.8), A (0.9).
        // maxDets 1 keeps only A (highest score, not first in input): recall 1/2. maxDets 10 and 100: recall 1.
        // AP: A tp, B tp, miss fp: precision 1 up to recall 1, so AP 1. The miss is small (400 px) but small has no
        // object: -1.
        var gt = Of([Box(1, 1, 1, 0, 0, 50, 50), Box(2, 1, 1, 100, 100, 50, 50)]);
        var result = CocoEvaluator.Evaluate(gt,
        [
            Det(1, 1, 300, 300, 20, 20, 0.5f), Det(1, 1, 100, 100, 50, 50, 0.8f), Det(1, 1, 0, 0, 50, 50, 0.9f),
        ]);
        AssertStats([1, 1, 1, -1, 1, -1, 0.5, 1, 1, -1, 1, -1], result);
    }

    [Fact]
    public void PrecisionIsInterpolatedFromTheRightAtThe101RecallPoints()
    {
        // Two medium objects; detections tp (0.9), fp (0.8), tp (0.7). Recall [.5, .5, 1], precision [1, .5, 2/3],
        // made monotone from the right: [1, 2/3, 2/3]. Recall points 0.00..0.50 (51 of them) find index 0
        // (precision 1), 0.51..1.00 (50) find index 2 (2/3): AP = (51 + 50 * 2/3) / 101 = 253/303
        // at every IoU threshold.
        // AR1 = 1/2 (only the 0.9 detection), AR10 = AR100 = 1.
        var gt = Of([Box(1, 1, 1, 0, 0, 50, 50), Box(2, 1, 1, 100, 100, 50, 50)]);
        var result = CocoEvaluator.Evaluate(gt,
        [
            Det(1, 1, 0, 0, 50, 50, 0.9f), Det(1, 1, 300, 300, 50, 50, 0.8f), Det(1, 1, 100, 100, 50, 50, 0.7f),
        ]);
        const double ap = 253.0 / 303.0;
        AssertStats([ap, ap, ap, -1, ap, -1, 0.5, 1, 1, -1, 1, -1], result);
    }

    [Fact]
    public void CategoryWithoutGroundTruthIsMinusOneAndLeftOutOfTheMeans()
    {
        // Category 1: one small object found exactly (AP 1). Category 2: no object, one detection (AP -1).
        // The mean over cells > -1 is category 1's alone: AP 1 (averaging in -1 would give 0, a 0 would give 0.5).
        var gt = Of([Box(1, 1, 1, 10, 10, 20, 20)], categories: [1, 2]);
        var result = CocoEvaluator.Evaluate(gt, [Det(1, 1, 10, 10, 20, 20, 0.9f), Det(1, 2, 50, 50, 20, 20, 0.8f)]);
        AssertStats([1, 1, 1, 1, -1, -1, 1, 1, 1, 1, -1, -1], result);
        // (Precision is tp / (tp + fp + eps) as in COCOeval, so "1" is 1 - 2.2e-16.)
        Assert.Equal([1L, 2L], result.PerCategory.Select(c => c.CategoryId));
        Assertions.Close(1, result.PerCategory[0].Ap, 1e-12, "AP of category 1");
        Assertions.Close(1, result.PerCategory[0].Ap50, 1e-12, "AP50 of category 1");
        Assert.Equal((-1.0, -1.0), (result.PerCategory[1].Ap, result.PerCategory[1].Ap50));
        Assert.Equal([1, 0], result.PerCategory.Select(c => c.GtCount));
    }

    [Fact]
    public void NoDetectionsGiveZeroWhereThereIsGroundTruthAndMinusOneElsewhere()
    {
        // No detection: every setting with objects has recall 0 and precision 0 (COCOeval's empty searchsorted);
        // medium and large have no object: -1. An image without objects (2) changes nothing.
        var gt = Of([Box(1, 1, 1, 10, 10, 20, 20)], images: [1, 2], categories: [1, 2]);
        var result = CocoEvaluator.Evaluate(gt, []);
        AssertStats([0, 0, 0, 0, -1, -1, 0, 0, 0, 0, -1, -1], result);
        Assert.Equal([0.0, -1.0], result.PerCategory.Select(c => c.Ap));
    }

    [Fact]
    public void ScoresApartOnlyBeyondFloat32KeepTheirOrder()
    {
        // A miss scored 0.30000000000000004 ranks above a hit scored 0.3 (equal in float32, where the tie would keep
        // the hit first): precision 1/2 at recall 1, and the image's top-1 detection is the miss (AR1 0).
        var gt = Of([Box(1, 1, 1, 0, 0, 20, 20)]);
        var result = CocoEvaluator.Evaluate(gt,
            [Det(1, 1, 0, 0, 20, 20, 0.3), Det(1, 1, 100, 100, 20, 20, 0.30000000000000004)]);
        AssertStats([0.5, 0.5, 0.5, 0.5, -1, -1, 0, 1, 1, 1, -1, -1], result);
    }

    [Fact]
    public void DetectionAreaAHairAboveTheSmallLimitIsOutsideSmall()
    {
        // An unmatched 32.000000001-square detection (area 1024 + 6.4e-8, 1024 in float32) is outside "small"
        // (area <= 32^2) and ignored there: APs 1, while under "all" it is a false positive above the hit (AP 0.5).
        var gt = Of([Box(1, 1, 1, 0, 0, 10, 10)]);
        var result = CocoEvaluator.Evaluate(gt,
            [Det(1, 1, 0, 0, 10, 10, 0.9), Det(1, 1, 100, 100, 32.000000001, 32.000000001, 0.95)]);
        AssertStats([0.5, 0.5, 0.5, 1, -1, -1, 0, 1, 1, 1, -1, -1], result);
    }

    [Fact]
    public void SummaryNumbersAreFormattedAsPythonFormatsThem()
    {
        // Python: '{:0.3f}'.format(0.0625) == '0.062', (0.1875) == '0.188' (exact value, ties to even), -1 -> '-1.000'.
        Assert.Equal("0.062", PythonFormat.Fixed(0.0625, 3));
        Assert.Equal("0.188", PythonFormat.Fixed(0.1875, 3));
        Assert.Equal("-1.000", PythonFormat.Fixed(-1, 3));
        Assert.Equal("0.835", PythonFormat.Fixed(253.0 / 303.0, 3));
        Assert.Equal("1.000", PythonFormat.Fixed(0.99951, 3));
    }
}
