using RetinaNet.Boxes;
using RetinaNet.Model;
using RetinaNet.Native;
using RetinaNet.Tests.Boxes;
using TorchSharp;
using Xunit;
using static RetinaNet.Native.Scalars;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Model;

/// <summary>The training-loss kernels (target assignment, smooth L1) against independent references: ODTK's matching
/// rule written out per anchor in double precision, the smooth L1 by hand and its gradient by autograd through the
/// elementwise loss, and the whole detection loss against its tensor-op path.</summary>
public class LossKernelTests
{
    [GpuFact]
    public void AssignKernelMatchesABruteForceAndTheTensorOps()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(21);
        var config = new AnchorConfig();
        var anchors = cat([Anchors.ForLevel(8, 30, 40, config), Anchors.ForLevel(16, 15, 20, config),
            AnchorAndCoderTests.MakeBoxes(500, g, 300)], 0);
        const int batch = 3, m = 12;
        var boxes = AnchorAndCoderTests.MakeBoxes(batch * m, g, 280).view(batch, m, 4).round();
        var xywh = cat([boxes[.., .., ..2], (boxes[.., .., 2..] - boxes[.., .., ..2]).Plus(Of(1))], -1);
        var cls = randint(0, 7, [batch, m, 1], generator: g).to(ScalarType.Float32);
        xywh[0, 5] = xywh[0, 3]; cls[0, 5] = tensor(6f);      // a tie: the same box twice, the first must win
        cls[0, 7] = tensor(TargetAssigner.Crowd);             // crowd regions
        cls[2, 0] = tensor(TargetAssigner.Crowd);
        xywh[2, 0] = tensor(new float[] { 0, 0, 200, 150 });
        cls[0, 10..] = tensor(TargetAssigner.Padding);        // padding rows
        cls[1] = tensor(TargetAssigner.Padding);              // an image with no boxes
        cls[1, 0] = tensor(TargetAssigner.Crowd);             // ... but one crowd region
        var targets = cat([xywh, cls], -1);

        var assigner = new TargetAssigner();
        using var ours = assigner.Assign(anchors.cuda(), targets.cuda());
        using var libtorch = new TargetAssigner(kernels: KernelOptions.None).Assign(anchors.cuda(), targets.cuda());

        var labels = ours.Labels.cpu().data<long>().ToArray();
        Assert.Equal(libtorch.Labels.cpu().data<long>().ToArray(), labels);
        var deltaError = (ours.BoxDeltas - libtorch.BoxDeltas).abs().max().item<float>();
        Assert.True(deltaError < 1e-5f, $"deltas differ from the tensor ops by {deltaError}");

        long n = anchors.shape[0];
        var a = anchors.data<float>().ToArray();
        var t = targets.data<float>().ToArray();
        int crowdIgnored = 0;
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < n; i++)
            {
                double best = -1, cover = 0; int match = -1;
                for (int j = 0; j < m; j++)
                {
                    int o = (b * m + j) * 5;
                    double x1 = t[o], y1 = t[o + 1], x2 = t[o] + t[o + 2] - 1, y2 = t[o + 1] + t[o + 3] - 1;
                    double iw = Math.Max(0, Math.Min(a[i * 4 + 2], x2) - Math.Max(a[i * 4], x1) + 1);
                    double ih = Math.Max(0, Math.Min(a[i * 4 + 3], y2) - Math.Max(a[i * 4 + 1], y1) + 1);
                    double area = (a[i * 4 + 2] - a[i * 4] + 1) * (a[i * 4 + 3] - a[i * 4 + 1] + 1);
                    if (t[o + 4] == TargetAssigner.Crowd) cover = Math.Max(cover, iw * ih / area);
                    if (t[o + 4] < 0) continue;
                    double iou = iw * ih / (area + (x2 - x1 + 1) * (y2 - y1 + 1) - iw * ih);
                    if (iou > best) { best = iou; match = j; }
                }
                long expected = best >= 0.5 ? (long)t[(b * m + match) * 5 + 4] + 1 : best < 0.4 ? 0 : -1;
                if (expected == 0 && cover >= TargetAssigner.CrowdIoA) { expected = -1; crowdIgnored++; }
                Assert.True(expected == labels[b * n + i],
                    $"image {b}, anchor {i}: expected label {expected}, got {labels[b * n + i]}");
            }
        Assert.True(crowdIgnored > 0 && labels.Count(l => l > 0) > 10 && labels.Count(l => l == 7) > 0,
            "the case must hold crowd-ignored anchors and tie-broken foreground");
    }

    [GpuTheory]
    [InlineData(ScalarType.Float32, false)]
    [InlineData(ScalarType.Float32, true)]
    [InlineData(ScalarType.BFloat16, true)]
    public void BoxLossKernelEqualsSmoothL1AndItsGradient(ScalarType dtype, bool nhwc)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(17);
        const int anchors = 9;
        long[][] sizes = [[6, 7], [3, 4]];
        var levels = sizes.Select(s => (randn(2, anchors * 4, s[0], s[1], generator: g) * Of(0.3)).to(dtype)).ToArray();
        long n = sizes.Sum(s => anchors * s[0] * s[1]);
        var labels = randint(-1, 4, [2, n], generator: g);
        var targets = randn(2, n, 4, generator: g) * Of(0.3);
        var onGpu = levels.Select(l => (nhwc ? Layouts.NhwcCopy(l.cuda()) : l.cuda()).requires_grad_()).ToArray();
        var loss = BoxLossKernel.Sum(onGpu, labels.cuda(), targets.cuda());
        loss.backward();

        double expected = 0;
        var lab = labels.data<long>().ToArray();
        var tv = targets.data<float>().ToArray();
        foreach (var e in HeadLevelElements.Of(levels, anchors, 4))
        {
            if (lab[e.Anchor] <= 0) continue;
            double d = Math.Abs(e.Value - tv[e.Anchor * 4 + e.K]);
            expected += d >= 0.11 ? d - 0.055 : 0.5 * d * d / 0.11;
        }
        Assertions.Close(expected, loss.item<float>(), 2e-5 * Math.Abs(expected), "loss sum");

        var refLevels = levels.Select(l => l.to(ScalarType.Float32).requires_grad_()).ToArray();
        Losses.SmoothL1(HeadLevelElements.PerAnchor(refLevels, anchors, 4), targets)
            .masked_fill((labels <= Of(0)).unsqueeze(-1), Of(0)).sum().backward();
        double tolerance = dtype == ScalarType.BFloat16 ? 1e-2 : 1e-5;
        for (int i = 0; i < levels.Length; i++)
        {
            var error = (onGpu[i].grad!.cpu().to(ScalarType.Float32) - refLevels[i].grad!).abs().max().item<float>();
            // gradients are ±1 or d/β ≤ 1
            Assert.True(error < tolerance * 10, $"level {i}: largest gradient error {error}");
        }
    }

    [GpuTheory]
    [InlineData(false)]
    [InlineData(true)] // rotated: 27 anchors a location, 6 box values an anchor
    public void DetectionLossWithKernelsEqualsTheTensorOps(bool rotated)
    {
        using var scope = NewDisposeScope();
        var config = new DetectorConfig
        {
            Backbones = ["ResNet18FPN"], Classes = 5,
            Anchors = new AnchorConfig { Angles = rotated ? AnchorConfig.DefaultAngles : [] },
        };
        int anchors = config.Anchors.Count, values = rotated ? 6 : 4;
        using var generator = new AnchorGenerator(config.Anchors);
        var g = new Generator(7);
        Tensor[] Level(int channels, double scale)
        {
            using var s = scale.ToScalar();
            return [(randn(2, channels, 8, 8, generator: g) * s).cuda(), (randn(2, channels, 4, 4, generator: g) * s)
                .cuda()];
        }
        var cls = Level(anchors * 5, 3); var box = Level(anchors * values, 0.3);
        var targets = rotated
            ? tensor(new float[] { 2, 3, 20, 14, 0.3f, 1, 10, 0, 16, 30, -0.5f, 4,
                                   -1, -1, -1, -1, 0, -1,
                                   0, 0, 31, 31, 0.1f, 2, 4, 4, 12, 10, 0, 0, 16, 16, 14, 14, 0.2f, -2 },
                                   [2, 3, 6]).cuda()
            : tensor(new float[] { 2, 3, 20, 14, 1, 10, 0, 16, 30, 4, -1, -1, -1, -1, -1,
                                   0, 0, 31, 31, 2, 4, 4, 12, 10, 0, 16, 16, 14, 14, -2 }, [2, 3, 5]).cuda();
        (float Cls, float Box, Tensor[] Grads) Run(bool kernels)
        {
            var inputs = cls.Concat(box).Select(t => Layouts.NhwcCopy(t).requires_grad_()).ToArray();
            var heads = new HeadOutputs(inputs[..2], inputs[2..]);
            var options = kernels ? KernelOptions.Default : KernelOptions.None;
            var (c, b) = new DetectionLoss(config, options).Compute(heads, generator.For(64, 64, heads), targets);
            c.Plus(b).backward();
            return (c.item<float>(), b.item<float>(), inputs.Select(t => t.grad!.cpu()).ToArray());
        }
        var (kc, kb, kg) = Run(true);
        var (tc, tb, tg) = Run(false);
        Assert.True(tb > 0, "the case must hold foreground anchors");
        Assertions.Close(tc, kc, 1e-5 * tc, "classification loss");
        Assertions.Close(tb, kb, 1e-5 * tb, "box loss");
        for (int i = 0; i < kg.Length; i++)
        {
            var error = (kg[i] - tg[i]).abs().max().item<float>();
            Assert.True(error < 1e-6, $"input {i}: largest gradient difference {error}");
        }
    }
}

/// <summary>Per-level head outputs [B, A·K, H, W] as the losses read them: anchors (a, y, x) level after level, K
/// values each (classes or box deltas). The reference side of the loss-kernel tests.</summary>
static class HeadLevelElements
{
    /// <summary>Every element in double: its image's anchor index among the labels' [B·N], its k, its value.</summary>
    public static IEnumerable<(long Anchor, int K, double Value)> Of(Tensor[] levels, int anchors, int k)
    {
        long n = levels.Sum(l => anchors * l.shape[2] * l.shape[3]), offset = 0;
        foreach (var l in levels)
        {
            long batch = l.shape[0], h = l.shape[2], w = l.shape[3];
            var v = l.to(ScalarType.Float32).contiguous().data<float>().ToArray();
            for (long b = 0; b < batch; b++)
                for (long a = 0; a < anchors; a++)
                    for (int c = 0; c < k; c++)
                        for (long y = 0; y < h; y++)
                            for (long x = 0; x < w; x++)
                                yield return (b * n + offset + (a * h + y) * w + x, c,
                                    v[(((b * anchors + a) * k + c) * h + y) * w + x]);
            offset += anchors * h * w;
        }
    }

    /// <summary>The levels as one [B, N, K] tensor (views, so autograd reaches the levels).</summary>
    public static Tensor PerAnchor(Tensor[] levels, int anchors, int k) =>
        cat(levels.Select(l => l.view(l.shape[0], anchors, k, l.shape[2], l.shape[3]).permute(0, 1, 3, 4, 2)
            .reshape(l.shape[0], -1, k)).ToArray(), 1);
}
