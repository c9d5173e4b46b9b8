using RetinaNet.Boxes;
using RetinaNet.Data;
using RetinaNet.Data.Loading;
using RetinaNet.Data.Transforms;
using Xunit;
using static RetinaNet.Native.Scalars;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Boxes;

/// <summary>Rotated boxes through anchors, matching, augmentation and collation, each against a reference written
/// here: plain loops over <see cref="RotatedRectangle"/>'s corners (host doubles) and ODTK's box2delta_rotated
/// formulas, and geometry (a transformed box must have the transformed corners).</summary>
public class RotatedPipelineTests
{
    static readonly AnchorConfig Rotated = new() { Angles = AnchorConfig.DefaultAngles };

    [Fact]
    public void LevelAnchorsAreTheCellAnchorsAtEveryCellInTheHeadsOrder()
    {
        using var scope = NewDisposeScope();
        Assert.Equal(27, Rotated.Count);
        var (axis, corners) = Anchors.RotatedForLevel(16, 2, 3, Rotated);
        var (cellAxis, cellCorners) = RotatedBoxes.CellAnchors(16, Rotated.Ratios, Rotated.Scales, Rotated.Angles);
        Assert.Equal(new long[] { 27 * 6, 4 }, axis.shape);
        Assert.Equal(new long[] { 27 * 6, 8 }, corners.shape);
        float[] ax = axis.data<float>().ToArray(), co = corners.data<float>().ToArray();
        float[] cax = cellAxis.data<float>().ToArray(), cco = cellCorners.data<float>().ToArray();
        for (int a = 0; a < 27; a++)
            for (int y = 0; y < 2; y++)
                for (int x = 0; x < 3; x++)
                {
                    int row = (a * 2 + y) * 3 + x;
                    for (int j = 0; j < 4; j++)
                        Assert.Equal(cax[a * 4 + j] + 16 * (j % 2 == 0 ? x : y), ax[row * 4 + j]);
                    for (int j = 0; j < 8; j++)
                        Assert.Equal(cco[a * 8 + j] + 16 * (j % 2 == 0 ? x : y), co[row * 8 + j]);
                }
    }

    [Fact]
    public void AssignmentEqualsABruteForceOverEveryAnchorAndBox()
    {
        using var scope = NewDisposeScope();
        var (axis, corners) = Anchors.RotatedForLevel(32, 3, 3, Rotated); // 243 anchors
        float[] ax = axis.data<float>().ToArray(), co = corners.data<float>().ToArray();
        int n = (int)axis.shape[0];
        // per image: boxes near anchors (so IoUs span foreground, ignored and background), a crowd region, padding
        var random = new Random(7);
        const int perImage = 5;
        var rows = new float[2 * perImage * 6];
        Array.Fill(rows, -1f);
        for (int b = 0; b < 2; b++)
            for (int m = 0; m < (b == 0 ? perImage : 3); m++)
            {
                int k = random.Next(n);
                double w = (ax[4 * k + 2] - ax[4 * k] + 1) * (0.7 + 0.6 * random.NextDouble());
                double h = (ax[4 * k + 3] - ax[4 * k + 1] + 1) * (0.7 + 0.6 * random.NextDouble());
                double cx = (ax[4 * k] + ax[4 * k + 2] + 1) / 2 + 6 * (random.NextDouble() - 0.5);
                double cy = (ax[4 * k + 1] + ax[4 * k + 3] + 1) / 2 + 6 * (random.NextDouble() - 0.5);
                double theta = Rotated.Angles[k / 9 / 9] + 0.3 * (random.NextDouble() - 0.5);
                int cls = m == 2 ? (int)TargetAssigner.Crowd : m % 3;
                var row = new float[] { (float)(cx - w / 2), (float)(cy - h / 2), (float)w, (float)h,
                    (float)theta, cls };
                row.CopyTo(rows, (b * perImage + m) * 6);
            }
        using var targets = new TargetAssigner().AssignRotated(axis, corners, tensor(rows, [2, perImage, 6]));
        var labels = targets.Labels.data<long>().ToArray();
        var deltas = targets.BoxDeltas.data<float>().ToArray();
        int foreground = 0, ignored = 0;
        for (int b = 0; b < 2; b++)
            for (int a = 0; a < n; a++)
            {
                double best = -1, crowdCover = 0;
                int bestBox = 0;
                for (int m = 0; m < perImage; m++)
                {
                    var r = rows.AsSpan((b * perImage + m) * 6, 6);
                    if (r[5] == -1) continue;
                    var box = new RotatedRectangle(r[0], r[1], r[2], r[3], r[4]).Corners().Select(v => (float)v)
                        .ToArray();
                    double iou = RotatedIou.Of(co.AsSpan(8 * a, 8), box);
                    double anchorArea = (ax[4 * a + 2] - ax[4 * a] + 1) * (ax[4 * a + 3] - ax[4 * a + 1] + 1);
                    if (r[5] == TargetAssigner.Crowd)
                        crowdCover = Math.Max(crowdCover, iou * (anchorArea + r[2] * r[3]) / (1 + iou) / anchorArea);
                    else if (iou > best) (best, bestBox) = (iou, m);
                }
                long expected = best >= 0.5 ? (long)rows[(b * perImage + bestBox) * 6 + 5] + 1 : best < 0.4 ? 0 : -1;
                if (expected == 0 && crowdCover >= TargetAssigner.CrowdIoA) expected = -1;
                Assert.True(expected == labels[b * n + a],
                    $"image {b} anchor {a}: label {labels[b * n + a]}, expected {expected} (IoU {best})");
                foreground += expected > 0 ? 1 : 0;
                ignored += expected < 0 ? 1 : 0;
                var d = deltas.AsSpan((b * n + a) * 6, 6);
                if (expected <= 0) { Assert.All(d.ToArray(), v => Assert.Equal(0f, v)); continue; }
                // ODTK's box2delta_rotated: inclusive widths, centre offsets over the anchor's size,
                // log sizes, sin, cos
                var t = rows.AsSpan((b * perImage + bestBox) * 6, 6);
                double aw = ax[4 * a + 2] - ax[4 * a] + 1, ah = ax[4 * a + 3] - ax[4 * a + 1] + 1;
                double acx = ax[4 * a] + aw / 2, acy = ax[4 * a + 1] + ah / 2;
                double[] want = [(t[0] + t[2] / 2 - acx) / aw, (t[1] + t[3] / 2 - acy) / ah, Math.Log(t[2] / aw),
                    Math.Log(t[3] / ah), Math.Sin(t[4]), Math.Cos(t[4])];
                for (int j = 0; j < 6; j++) Assertions.Close(want[j], d[j], 2e-5);
            }
        Assert.True(foreground >= 5 && ignored >= 5,
            $"{foreground} foreground and {ignored} ignored anchors: the case tests too little");
    }

    /// <summary>The corners of <paramref name="after"/> are those of <paramref name="before"/> moved by
    /// <paramref name="map"/>, in any order.</summary>
    static void AssertSameOutline(RotatedRectangle before, RotatedRectangle after,
        Func<double, double, (double, double)> map)
    {
        var moved = Enumerable.Range(0, 4).Select(i => map(before.Corners()[2 * i], before.Corners()[2 * i + 1]))
            .ToList();
        var got = Enumerable.Range(0, 4).Select(i => (after.Corners()[2 * i], after.Corners()[2 * i + 1])).ToList();
        foreach (var (x, y) in moved)
            Assert.Contains(got, g => Math.Abs(g.Item1 - x) < 1e-3 && Math.Abs(g.Item2 - y) < 1e-3);
    }

    static ImageWithBoxes Image(int w, int h, RotatedRectangle box) => new(zeros(3, h, w, ScalarType.Byte),
        [(float)box.X, (float)box.Y, (float)(box.X + box.W), (float)(box.Y + box.H)], [0], [(float)box.Theta]);

    static RotatedRectangle Box(ImageWithBoxes image) =>
        new(image.Boxes[0], image.Boxes[1], image.Boxes[2] - image.Boxes[0], image.Boxes[3] - image.Boxes[1],
            image.Angles![0]);

    [Fact]
    public void FlipMirrorsTheTurnedBoxAndRotationsTurnIt()
    {
        var box = new RotatedRectangle(10, 20, 40, 10, 0.3);
        using (var image = Image(100, 60, box))
        {
            new HorizontalFlip(p: 1).Apply(image, new Random(0));
            Assert.Equal(-0.3f, image.Angles![0]);
            AssertSameOutline(box, Box(image), (x, y) => (100 - x, y));
        }
        using (var image = Image(100, 60, box))
        {
            RandomRotate90.Rotate(image, 1);
            Assert.Equal(0.3f, image.Angles![0]); // a quarter turn further: the same angle, width and height swapped
            AssertSameOutline(box, Box(image), (x, y) => (y, 100 - x));
        }
        using (var image = Image(100, 60, box))
        {
            new ResizeShorterSide(30, 1000).Apply(image, new Random(0));
            AssertSameOutline(box, Box(image), (x, y) => (x / 2, y / 2));
        }
    }

    [Fact]
    public void ARotatedBoxIsNotClippedButAnEmptyOneIsDropped()
    {
        var sample = new Sample(0, 1, "x.png", null, null, [-5, -5, 20, 8, 3, 3, 3, 9], [1, 2], [0.2f, 0.1f]);
        var clipped = sample.ClipTo(10, 10, out int dropped);
        Assert.Equal(1, dropped);
        Assert.Equal(new float[] { -5, -5, 20, 8 }, clipped.Boxes);
        Assert.Equal(new[] { 0.2f }, clipped.Angles);
    }

    [Fact]
    public void BatchesCarryTheAngleBeforeTheClass()
    {
        using var a = new ImageWithBoxes(zeros(3, 20, 30, ScalarType.Byte), [1, 2, 11, 7, 4, 4, 8, 9], [2, 0],
            [0.5f, -0.25f]);
        using var b = new ImageWithBoxes(zeros(3, 20, 30, ScalarType.Byte), [], [], []);
        var images = new[] { new PreparedImage(0, 0, a, 30, 20), new PreparedImage(1, 1, b, 30, 20) };
        using var batch = HostBatch.Collate(images, [false, false], 128, pin: false, rotated: true);
        Assert.Equal(new long[] { 2, 2, 6 }, batch.Targets.shape);
        Assert.Equal(
            new float[] { 1, 2, 10, 5, 0.5f, 2, 4, 4, 4, 5, -0.25f, 0, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1 },
            batch.Targets.data<float>().ToArray());
    }

    [Fact]
    public void NormalisingKeepsTheRectangleAndBringsTheAngleIntoAQuarterTurn()
    {
        var random = new Random(3);
        for (int i = 0; i < 200; i++)
        {
            var r = new RotatedRectangle(100 * random.NextDouble(), 100 * random.NextDouble(),
                1 + 50 * random.NextDouble(), 1 + 50 * random.NextDouble(), 8 * (random.NextDouble() - 0.5));
            var n = r.Normalized();
            Assert.InRange(n.Theta, -Math.PI / 4, Math.PI / 4);
            AssertSameOutline(r, n, (x, y) => (x, y));
        }
    }

    [GpuFact]
    public void OnTheGpuMatchingAndSuppressionEqualTheCpus()
    {
        using var scope = NewDisposeScope();
        var (axis, corners) = Anchors.RotatedForLevel(8, 8, 8, Rotated); // anchors of 32 to 51 px over 64 px
        var g = new Generator(5);
        var xy = rand([2, 6, 2], generator: g) * Of(30);
        var wh = (rand([2, 6, 2], generator: g) * Of(30)).Plus(Of(28));
        var theta = (rand([2, 6, 1], generator: g) - Of(0.5)) * Of(1.5);
        var cls = randint(0, 3, [2, 6, 1], generator: g).to(ScalarType.Float32);
        // the second image's last two rows: a crowd region and padding
        var special = tensor(new float[] { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, TargetAssigner.Crowd, -1 }).view(2, 6, 1);
        cls = where(special < Of(0), special, cls);
        var targets = cat([xy, wh, theta, cls], -1);
        using var onCpu = new TargetAssigner().AssignRotated(axis, corners, targets);
        using var onGpu = new TargetAssigner().AssignRotated(axis.cuda(), corners.cuda(), targets.cuda());
        Assert.Equal(onCpu.Labels.data<long>().ToArray(), onGpu.Labels.cpu().data<long>().ToArray());
        Assert.True(onCpu.Labels.gt(Of(0)).sum().item<long>() > 0, "no foreground: the case tests too little");
        Assert.True((onCpu.BoxDeltas - onGpu.BoxDeltas.cpu()).abs().max().item<float>() < 1e-5);

        // 300 candidates of 3 classes in a 200 px square, many overlapping
        long k = 300;
        var x1y1 = rand([1, k, 2], generator: g) * Of(150);
        var boxes = cat([x1y1, x1y1.Plus(rand([1, k, 2], generator: g) * Of(50)).Plus(Of(5)),
            (rand([1, k, 1], generator: g) - Of(0.5)) * Of(1.5)], -1);
        var candidates = new RetinaNet.Inference.Candidates(rand([1, k], generator: g), boxes,
            randint(0, 3, [1, k], generator: g), ones(1, k, dtype: ScalarType.Bool));
        var config = new RetinaNet.Model.InferenceConfig { NmsThreshold = 0.5, Detections = 100 };
        using var cpuKept = RetinaNet.Inference.Postprocess.Suppress(candidates, config);
        using var gpu = new RetinaNet.Inference.Candidates(candidates.Scores.cuda(), boxes.cuda(),
            candidates.Classes.cuda(), candidates.Valid.cuda());
        using var gpuKept = RetinaNet.Inference.Postprocess.Suppress(gpu, config);
        Assert.Equal(cpuKept.Count.item<long>(), gpuKept.Count.cpu().item<long>());
        Assert.Equal(cpuKept.Indices.data<long>().ToArray(), gpuKept.Indices.cpu().data<long>().ToArray());
        Assert.Equal(5, gpuKept.Boxes.shape[2]);
    }
}
