using RetinaNet.Boxes;
using RetinaNet.Model;
using TorchSharp;
using Xunit;
using static RetinaNet.Native.Scalars;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Boxes;

public class AnchorAndCoderTests
{
    [Fact]
    public void CellAnchorsEqualHandComputedValues()
    {
        // stride 8: ratio r gives w = sqrt(64 / r) * scale, h = w_unscaled * r * scale, centred on (4, 4).
        using var a = Anchors.ForCell(8, new AnchorConfig());
        Assert.Equal(new long[] { 9, 4 }, a.shape);
        var v = a.data<float>().ToArray();
        // a = 0: scale 4, ratio 1: 32 x 32 -> [-12, -12, 20, 20]
        Assert.Equal(new[] { -12f, -12f, 20f, 20f }, v[0..4]);
        // a = 1: scale 4, ratio 2: w = sqrt(32) * 4 = 22.627417, h = 45.254834
        double w = Math.Sqrt(32) * 4, h = Math.Sqrt(32) * 2 * 4;
        Assertions.Close(0.5 * (8 - w), v[4], 1e-4, "x1"); Assertions.Close(0.5 * (8 - h), v[5], 1e-4, "y1");
        Assertions.Close(0.5 * (8 + w), v[6], 1e-4, "x2"); Assertions.Close(0.5 * (8 + h), v[7], 1e-4, "y2");
        // a = 3: scale 4 * 2^(1/3), ratio 1
        double s = 8 * 4 * Math.Pow(2, 1.0 / 3);
        Assertions.Close(0.5 * (8 - s), v[12], 1e-4, "x1 scale 2");
        Assertions.Close(0.5 * (8 + s), v[14], 1e-4, "x2 scale 2");
        // a = 8: scale 4 * 2^(2/3), ratio 0.5: w = sqrt(128) * sc, h = w_unscaled * 0.5 * sc
        double sc = 4 * Math.Pow(2, 2.0 / 3), w8 = Math.Sqrt(128) * sc, h8 = Math.Sqrt(128) * 0.5 * sc;
        Assertions.Close(0.5 * (8 - w8), v[32], 1e-4, "x1 a8"); Assertions.Close(0.5 * (8 + h8), v[35], 1e-4, "y2 a8");
    }

    [Fact]
    public void LevelAnchorsAreOrderedAnchorThenRowThenColumn()
    {
        var config = new AnchorConfig();
        using var cell = Anchors.ForCell(16, config);
        using var level = Anchors.ForLevel(16, 3, 5, config);
        Assert.Equal(new long[] { 9 * 3 * 5, 4 }, level.shape);
        var c = cell.data<float>().ToArray();
        var l = level.data<float>().ToArray();
        foreach (var (a, y, x) in new[] { (0, 0, 0), (2, 1, 3), (8, 2, 4), (5, 0, 4) })
        {
            int row = (a * 3 + y) * 5 + x;
            Assert.Equal(c[a * 4] + 16 * x, l[row * 4]);
            Assert.Equal(c[a * 4 + 1] + 16 * y, l[row * 4 + 1]);
            Assert.Equal(c[a * 4 + 2] + 16 * x, l[row * 4 + 2]);
            Assert.Equal(c[a * 4 + 3] + 16 * y, l[row * 4 + 3]);
        }
    }

    [Fact]
    public void EncodeEqualsHandComputedDeltas()
    {
        // anchor [0,0,9,9]: 10x10 centred (5,5); box [2,4,21,13]: 20x10 centred (12,9)
        using var d = BoxCoder.Encode(tensor(new float[] { 2, 4, 21, 13 }, [1, 4]),
            tensor(new float[] { 0, 0, 9, 9 }, [1, 4]));
        var v = d.data<float>().ToArray();
        Assertions.Close(0.7, v[0], 1e-6); Assertions.Close(0.4, v[1], 1e-6);
        Assertions.Close(Math.Log(2), v[2], 1e-6); Assertions.Close(0, v[3], 1e-6);
    }

    [Fact]
    public void DecodeInvertsEncodeOnRandomBoxes()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(7);
        var anchors = MakeBoxes(500, g);
        var boxes = MakeBoxes(500, g);
        var decoded = BoxCoder.Decode(BoxCoder.Encode(boxes, anchors), anchors);
        Assert.True((decoded - boxes).abs().max().item<float>() < 2e-3f);
    }

    [Fact]
    public void DecodeClampsToTheInput()
    {
        using var box = BoxCoder.Decode(tensor(new float[] { -1, -1, 1, 1 }, [1, 4]),
            tensor(new float[] { 0, 0, 99, 49 }, [1, 4]), (64, 32));
        var v = box.data<float>().ToArray();
        Assert.Equal(new[] { 0f, 0f, 63f, 31f }, v);
    }

    [Fact]
    public void PairwiseIouUsesInclusivePixels()
    {
        // [0,0,9,9] vs [5,0,14,9]: 5x10 overlap = 50; union 150.
        using var iou = BoxOps.PairwiseIou(tensor(new float[] { 0, 0, 9, 9 }, [1, 4]),
            tensor(new float[] { 5, 0, 14, 9, 20, 20, 30, 30 }, [2, 4]));
        var v = iou.data<float>().ToArray();
        Assertions.Close(1.0 / 3, v[0], 1e-6); Assert.Equal(0f, v[1]);
    }

    internal static Tensor MakeBoxes(long n, Generator g, float extent = 600)
    {
        using var scale = extent.ToScalar();
        var xy = rand(n, 2, generator: g) * scale;
        var wh = (rand(n, 2, generator: g) * Of(200)).Plus(Of(4));
        return cat([xy, xy.Plus(wh)], 1);
    }
}
