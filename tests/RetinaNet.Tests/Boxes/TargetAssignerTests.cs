using RetinaNet.Boxes;
using Xunit;
using static RetinaNet.Native.Scalars;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Boxes;

public class TargetAssignerTests
{
    // Anchors chosen so IoUs with the box [0,0,9,9] (xywh 0,0,10,10) are known by hand.
    static readonly float[] AnchorValues =
    [
        0, 0, 9, 9,       // 0: IoU 1 -> foreground
        5, 0, 14, 9,      // 1: IoU 50/150 = 0.333 -> background
        0, 0, 9, 21,      // 2: IoU 100/220 = 0.4545 -> ignored (between 0.4 and 0.5)
        100, 100, 109, 109, // 3: no overlap -> background (or ignored inside a crowd region)
        0, 0, 10, 9,      // 4: IoU 100/110 = 0.909 -> foreground
    ];

    static Tensor Anchors5 => tensor(AnchorValues, [5, 4]);

    [Fact]
    public void LabelsFollowOdtkThresholds()
    {
        using var scope = NewDisposeScope();
        var targets = tensor(new float[] { 0, 0, 10, 10, 6, -1, -1, -1, -1, -1 }, [1, 2, 5]);
        using var t = new TargetAssigner().Assign(Anchors5, targets);
        Assert.Equal(new long[] { 7, 0, -1, 0, 7 }, t.Labels.data<long>().ToArray());
        var d = t.BoxDeltas.data<float>().ToArray();
        Assert.All(d[0..4], x => Assert.Equal(0f, x, 6)); // exact match -> zero deltas
        // anchor 4: 11x10 centred (5.5, 5); box 10x10 centred (5,5): dx = -0.5/11, dw = log(10/11)
        Assertions.Close(-0.5 / 11, d[16], 1e-6); Assertions.Close(Math.Log(10.0 / 11), d[18], 1e-6);
        Assert.All(d[4..16], x => Assert.Equal(0f, x)); // not foreground -> zero
    }

    [Fact]
    public void TiesGoToTheFirstBox()
    {
        using var scope = NewDisposeScope();
        var targets = tensor(new float[] { 0, 0, 10, 10, 3, 0, 0, 10, 10, 5 }, [1, 2, 5]);
        using var t = new TargetAssigner().Assign(Anchors5, targets);
        Assert.Equal(4L, t.Labels[0, 0].item<long>());
    }

    [Fact]
    public void BestBoxWinsPerAnchor()
    {
        using var scope = NewDisposeScope();
        // Box 1 matches anchor 3 exactly; box 0 matches anchor 0.
        var targets = tensor(new float[] { 0, 0, 10, 10, 1, 100, 100, 10, 10, 2 }, [1, 2, 5]);
        using var t = new TargetAssigner().Assign(Anchors5, targets);
        Assert.Equal(new long[] { 2, 0, -1, 3, 2 }, t.Labels.data<long>().ToArray());
    }

    [Fact]
    public void CrowdRegionsIgnoreCoveredBackgroundAndNeverBecomeTargets()
    {
        using var scope = NewDisposeScope();
        // A crowd region over anchor 3 and (also) exactly over anchor 0's object.
        var targets = tensor(new float[] { 0, 0, 10, 10, 6, 95, 95, 30, 30, -2, 0, 0, 10, 10, -2 }, [1, 3, 5]);
        using var t = new TargetAssigner().Assign(Anchors5, targets);
        Assert.Equal(new long[] { 7, -1, -1, -1, 7 }, t.Labels.data<long>().ToArray());
        // anchor 1 is background by IoU but lies inside the second crowd box (same as the object) -> ignored.
    }

    [Fact]
    public void EmptyImagesAreAllBackgroundInAMixedBatch()
    {
        using var scope = NewDisposeScope();
        var targets = tensor(new float[] { 0, 0, 10, 10, 0, -1, -1, -1, -1, -1 }, [2, 1, 5]);
        using var t = new TargetAssigner().Assign(Anchors5, targets);
        Assert.Equal(new long[] { 1, 0, -1, 0, 1, 0, 0, 0, 0, 0 }, t.Labels.data<long>().ToArray());
        Assert.False(t.BoxDeltas.isnan().any().item<bool>());
        using var none = new TargetAssigner().Assign(Anchors5, zeros(3, 0, 5));
        Assert.Equal(new long[] { 3, 5 }, none.Labels.shape);
        Assert.Equal(0, none.Labels.abs().sum().item<long>());
    }

    [Fact]
    public void BatchedAssignmentEqualsPerImageBruteForce()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(3);
        var anchors = AnchorAndCoderTests.MakeBoxes(300, g, 200);
        var boxes = AnchorAndCoderTests.MakeBoxes(4 * 6, g, 200).view(4, 6, 4);
        var xywh = cat([boxes[.., .., ..2], (boxes[.., .., 2..] - boxes[.., .., ..2]).Plus(Of(1))], -1);
        var cls = randint(0, 5, [4, 6, 1], generator: g).to(ScalarType.Float32);
        cls[1, 4..] = tensor(-1f); // padding in image 1
        var targets = cat([xywh, cls], -1);
        using var t = new TargetAssigner().Assign(anchors, targets);
        var a = anchors.data<float>().ToArray();
        var tv = targets.data<float>().ToArray();
        var labels = t.Labels.data<long>().ToArray();
        for (int b = 0; b < 4; b++)
            for (int n = 0; n < 300; n++)
            {
                double best = -1; int bestBox = -1;
                for (int m = 0; m < 6; m++)
                {
                    int o = (b * 6 + m) * 5;
                    if (tv[o + 4] < 0) continue;
                    double iou = Iou(a[(n * 4)..(n * 4 + 4)],
                        [tv[o], tv[o + 1], tv[o] + tv[o + 2] - 1, tv[o + 1] + tv[o + 3] - 1]);
                    if (iou > best) { best = iou; bestBox = m; }
                }
                long expected = best >= 0.5 ? (long)tv[(b * 6 + bestBox) * 5 + 4] + 1 : best < 0.4 ? 0 : -1;
                Assert.Equal(expected, labels[b * 300 + n]);
            }
    }

    static double Iou(float[] a, float[] b)
    {
        double iw = Math.Max(0, Math.Min(a[2], b[2]) - Math.Max(a[0], b[0]) + 1),
            ih = Math.Max(0, Math.Min(a[3], b[3]) - Math.Max(a[1], b[1]) + 1);
        double inter = iw * ih, areaA = (a[2] - a[0] + 1) * (a[3] - a[1] + 1),
            areaB = (b[2] - b[0] + 1) * (b[3] - b[1] + 1);
        return inter / (areaA + areaB - inter);
    }
}
