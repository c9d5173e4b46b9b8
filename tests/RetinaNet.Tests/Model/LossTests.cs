using RetinaNet.Boxes;
using RetinaNet.Model;
using Xunit;
using static RetinaNet.Native.Scalars;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Model;

public class LossTests
{
    static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    // Focal loss written out by hand in double precision.
    static double Focal(double logit, int target)
    {
        double p = Sigmoid(logit), ce = target == 1 ? -Math.Log(p) : -Math.Log(1 - p);
        double pt = target == 1 ? p : 1 - p, alpha = target == 1 ? 0.25 : 0.75;
        return alpha * Math.Pow(1 - pt, 2) * ce;
    }

    [Fact]
    public void FocalLossEqualsHandComputation()
    {
        double[] logits = [0, 2, -3, 0.5, 7, -7];
        int[] targets = [1, 1, 0, 0, 0, 1];
        using var loss = Losses.Focal(tensor(logits.Select(x => (float)x).ToArray()),
            tensor(targets.Select(x => (float)x).ToArray()));
        var v = loss.data<float>().ToArray();
        Assertions.Close(0.25 * 0.25 * Math.Log(2), v[0], 1e-7, "logit 0, target 1");
        for (int i = 0; i < logits.Length; i++)
            Assertions.Close(Focal(logits[i], targets[i]), v[i], 1e-6 * Math.Max(1, Focal(logits[i], targets[i])),
                $"case {i}");
    }

    [Fact]
    public void SmoothL1EqualsHandComputation()
    {
        using var loss = Losses.SmoothL1(tensor(new float[] { 0.05f, 0.5f, -0.2f, 0.11f }), zeros(4));
        var v = loss.data<float>().ToArray();
        Assertions.Close(0.5 * 0.05 * 0.05 / 0.11, v[0], 1e-7);
        Assertions.Close(0.5 - 0.055, v[1], 1e-7);
        Assertions.Close(0.2 - 0.055, v[2], 1e-7);
        Assertions.Close(0.11 - 0.055, v[3], 1e-7);
    }

    [Fact]
    public void DetectionLossIsNormalisedPerLevelAsOdtk()
    {
        using var scope = NewDisposeScope();
        // One anchor per location (ratio 1, scale 1), 2 classes, two levels of 1x1 and 1x2 cells (strides 16 and 8).
        var config = new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 2,
            Anchors = new AnchorConfig { Ratios = [1.0], Scales = [1.0] } };
        var anchors = new LevelAnchors([Anchors.ForLevel(16, 1, 1, config.Anchors),
            Anchors.ForLevel(8, 1, 2, config.Anchors)], [16, 8], [(1, 1), (1, 2)], 1);
        // Level 0 anchor: [0,0,16,16]; level 1 anchors: [0,0,8,8] and [8,0,16,8]. A box equal to
        // level-1 anchor 1, class 1.
        var targets = tensor(new float[] { 8, 0, 9, 9, 1 }, [1, 1, 5]);
        float[] logits0 = [0.3f, -1.2f], logits1 = [0.1f, 0.2f, -0.4f, 1.5f]; // [A*C, H, W] per level
        var heads = new HeadOutputs(
            [tensor(logits0, [1, 2, 1, 1]),
                tensor(new float[] { logits1[0], logits1[2], logits1[1], logits1[3] }, [1, 2, 1, 2])],
            [tensor(new float[] { 0.1f, 0.2f, 0.3f, 0.4f }, [1, 4, 1, 1]),
                tensor(new float[] { 0, 0.05f, 0, 0.5f, 0, 0, 0, 0 }, [1, 4, 1, 2])]);
        var (cls, box) = new DetectionLoss(config).Compute(heads, anchors, targets);
        // IoUs: level-0 anchor 81/289 = 0.28 -> background; level-1 anchor 0: 0 -> background;
        // anchor 1: exact -> class 1.
        double expectedCls = Focal(0.3, 0) + Focal(-1.2, 0) + Focal(0.1, 0) + Focal(0.2, 0) + Focal(-0.4, 0)
            + Focal(1.5, 1);
        // Box loss of the foreground anchor (level 1, x = 1): deltas (0.05, 0, 0.5, 0) vs zero targets.
        double expectedBox = 0.5 * 0.05 * 0.05 / 0.11 + 0 + (0.5 - 0.055) + 0;
        double normaliser = 1 /* level 0: 0 fg clamped to 1 */ + 1 /* level 1: one fg */;
        Assertions.Close(expectedCls / normaliser, cls.item<float>(), 1e-6, "classification");
        Assertions.Close(expectedBox / normaliser, box.item<float>(), 1e-6, "box");
    }

    [Fact]
    public void DetectionLossFocalSumEqualsElementwiseFocalOnOneHotTargetsWithIgnoredAnchors()
    {
        using var scope = NewDisposeScope();
        // Two levels (4x4 and 2x2 cells, 9 anchors each), 5 classes, two images: targets hit some anchors (foreground),
        // leave others between the IoU thresholds (ignored, label -1) and one crowd region (ignored, -2).
        var config = new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 5 };
        using var generator = new AnchorGenerator(config.Anchors);
        var g = new Generator(7);
        var heads = new HeadOutputs(
            [randn(2, 9 * 5, 4, 4, generator: g) * Of(3), randn(2, 9 * 5, 2, 2, generator: g) * Of(3)],
            [randn(2, 36, 4, 4, generator: g) * Of(0.3), randn(2, 36, 2, 2, generator: g) * Of(0.3)]);
        var anchors = generator.For(32, 32, heads);
        var targets = tensor(new float[] { 2, 3, 20, 14, 1, 10, 0, 16, 30, 4, -1, -1, -1, -1, -1,
                                           0, 0, 31, 31, 2, 4, 4, 12, 10, 0, 16, 16, 14, 14, -2 }, [2, 3, 5]);
        var (cls, _) = new DetectionLoss(config).Compute(heads, anchors, targets);

        // Reference: the elementwise focal loss on a one-hot tensor, ignored anchors masked, as ODTK computes it.
        using var assigned = new TargetAssigner(config.AnchorIous.Background, config.AnchorIous.Foreground)
            .Assign(cat(anchors.PerLevel, 0), targets);
        var loss = new DetectionLoss(config);
        var logits = cat(heads.ClassLogits.Select(l => loss.PerAnchor(l, 5)).ToArray(), 1);
        var labels = assigned.Labels;
        Assert.True((labels > Of(0)).any().item<bool>() && (labels < Of(0)).any().item<bool>(),
            "the case must hold foreground and ignored anchors");
        var oneHot = zeros_like(logits).scatter_(2, (labels - Of(1)).clamp_min(Of(0)).unsqueeze(-1),
            (labels > Of(0)).unsqueeze(-1).to(ScalarType.Float32));
        var reference = Losses.Focal(logits, oneHot).masked_fill((labels < Of(0)).unsqueeze(-1), Of(0)).sum();
        var normaliser = stack((labels > Of(0)).split(anchors.Counts, 1).Select(l => l.sum().clamp_min(Of(1)))
            .ToArray()).sum().to(ScalarType.Float32);
        Assertions.Close((reference / normaliser).item<float>(), cls.item<float>(), 2e-6, "focal sum");
    }
}
