using RetinaNet.Boxes;
using RetinaNet.Inference;
using RetinaNet.Model;
using Xunit;
using static RetinaNet.Native.Scalars;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Boxes;

public class PostprocessTests
{
    [Fact]
    public void DecodesTheRightAnchorClassAndBox()
    {
        using var scope = NewDisposeScope();
        var anchorConfig = new AnchorConfig();
        const int A = 9, C = 3, H = 2, W = 3;
        // Level 0 (stride 8, 2x3) holds one confident candidate at anchor 4, class 2, row 1, column 2.
        var cls0 = full(1, A * C, H, W, Of(-10.0)); cls0[0, 4 * C + 2, 1, 2] = tensor(5f);
        var box0 = zeros(1, A * 4, H, W);
        float[] d = [0.1f, -0.2f, 0.3f, 0f];
        for (int k = 0; k < 4; k++) box0[0, 4 * 4 + k, 1, 2] = tensor(d[k]);
        // Level 1 (stride 16, 1x2): a weaker candidate, class 0, anchor 0, column 1.
        var cls1 = full(1, A * C, 1, 2, Of(-10.0)); cls1[0, 0, 0, 1] = tensor(1f);
        var box1 = zeros(1, A * 4, 1, 2);
        var heads = new HeadOutputs([cls0, cls1], [box0, box1]);
        var anchors = new LevelAnchors([Anchors.ForLevel(8, H, W, anchorConfig),
            Anchors.ForLevel(16, 1, 2, anchorConfig)], [8, 16], [(H, W), (1, 2)], A);
        using var result = Postprocess.Detect(heads, anchors, C, new InferenceConfig(), (24, 16));

        Assert.Equal(2L, result.Count.item<long>());
        Assert.Equal(new long[] { 2, 0 }, result.Classes[0, ..2].data<long>().ToArray());
        Assertions.Close(1 / (1 + Math.Exp(-5)), result.Scores[0, 0].item<float>(), 1e-6, "score");
        Assertions.Close(1 / (1 + Math.Exp(-1)), result.Scores[0, 1].item<float>(), 1e-6, "score 2");

        // By hand: anchor 4 = scale 4*2^(1/3), ratio 2 at stride 8, shifted by (2*8, 1*8).
        double sc = 4 * Math.Pow(2, 1.0 / 3), ws = Math.Sqrt(64 / 2.0) * sc, hs = Math.Sqrt(64 / 2.0) * 2 * sc;
        double ax1 = 0.5 * (8 - ws) + 16, ay1 = 0.5 * (8 - hs) + 8, ax2 = 0.5 * (8 + ws) + 16, ay2 = 0.5 * (8 + hs) + 8;
        double aw = ax2 - ax1 + 1, ah = ay2 - ay1 + 1, cx = ax1 + 0.5 * aw + d[0] * aw, cy = ay1 + 0.5 * ah + d[1] * ah;
        double bw = Math.Exp(d[2]) * aw, bh = Math.Exp(d[3]) * ah;
        double[] expected = [Math.Clamp(cx - 0.5 * bw, 0, 23), Math.Clamp(cy - 0.5 * bh, 0, 15),
            Math.Clamp(cx + 0.5 * bw - 1, 0, 23), Math.Clamp(cy + 0.5 * bh - 1, 0, 15)];
        var got = result.Boxes[0, 0].data<float>().ToArray();
        for (int k = 0; k < 4; k++) Assertions.Close(expected[k], got[k], 1e-4, $"box[{k}]");
        Assert.Equal(0f, result.Scores[0, 2].item<float>()); // padding
    }

    [Fact]
    public void TopNIsTakenPerLevelAndThresholdApplies()
    {
        using var scope = NewDisposeScope();
        var anchorConfig = new AnchorConfig { Ratios = [1.0], Scales = [1.0] };
        // 1 anchor, 1 class, 1x8 grid of far-apart boxes (no NMS interaction); scores rising with x.
        var logits = tensor(Enumerable.Range(0, 8).Select(i => (float)(i - 4)).ToArray(), [1, 1, 1, 8]);
        var heads = new HeadOutputs([logits], [zeros(1, 4, 1, 8)]);
        var anchors = new LevelAnchors([Anchors.ForLevel(128, 1, 8, anchorConfig)], [128], [(1, 8)], 1);
        using var r = Postprocess.Detect(heads, anchors, 1, new InferenceConfig { TopN = 3, ScoreThreshold = 0.05 },
            (1024, 128));
        Assert.Equal(3L, r.Count.item<long>());
        using var r2 = Postprocess.Detect(heads, anchors, 1, new InferenceConfig { TopN = 8, ScoreThreshold = 0.5 },
            (1024, 128));
        Assert.Equal(4L, r2.Count.item<long>()); // sigmoid(i - 4) >= 0.5 for i = 4..7
    }

    [Theory]
    [InlineData(2, 1 << 20, 1000)] // 8 chunks
    [InlineData(1, 3 << 18, 7)]     // 6 chunks
    [InlineData(3, 1000, 10)]       // short rows: one selection
    public void ChunkedTopKEqualsSortingTheRow(int batch, int n, int k)
    {
        using var scope = NewDisposeScope();
        var x = randn(batch, n, generator: new Generator(9)); // distinct values: the k best are unique
        var (values, indices) = Postprocess.TopK(x, k);
        var (sorted, order) = x.sort(dim: 1, descending: true);
        Assert.True(values.equal(sorted[.., ..k]).all().item<bool>(), "values");
        Assert.True(indices.equal(order[.., ..k]).all().item<bool>(), "indices");
        Assert.True(x.gather(1, indices).equal(values).all().item<bool>(), "indices point at their values");
    }
}
