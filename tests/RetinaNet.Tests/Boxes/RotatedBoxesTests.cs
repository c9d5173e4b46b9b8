using System.Text.Json;
using RetinaNet.Boxes;
using Xunit;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Boxes;

/// <summary>Our rotated anchors and box coding against what ODTK's own functions return (Fixtures/odtk-rotated, run
/// from ODTK's source with PyTorch in float32; see ../shared/README.md).</summary>
public class RotatedBoxesTests
{
    static readonly JsonElement Reference =
        JsonDocument.Parse(File.ReadAllBytes(Paths.Fixture("odtk-rotated", "odtk_rotated_reference.json"))).RootElement;

    static Tensor Rows(JsonElement e) =>
        tensor(e.EnumerateArray().SelectMany(r => r.EnumerateArray().Select(x => (float)x.GetDouble())).ToArray())
            .view(e.GetArrayLength(), -1);

    static double[] Values(JsonElement e) => e.EnumerateArray().Select(x => x.GetDouble()).ToArray();

    /// <summary>float32 precision: a few units in the last place of the largest value compared (libm and SLEEF
    /// sin/cos/exp/log/atan2 differ by an ulp; a matmul may fuse its multiply-add).</summary>
    static void Float32Close(Tensor expected, Tensor actual, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        double scale = Math.Max(1, expected.abs().max().item<float>());
        double err = (expected - actual).abs().max().item<float>();
        Assert.True(err <= 4 * scale * Math.Pow(2, -23), $"{what}: max error {err:E3} at scale {scale:E3}");
    }

    [Theory]
    [InlineData("8")]
    [InlineData("16")]
    [InlineData("32")]
    [InlineData("64")]
    [InlineData("128")]
    public void AnchorsEqualOdtksGenerateAnchorsRotated(string stride)
    {
        using var scope = NewDisposeScope();
        var defaults = Reference.GetProperty("defaults");
        var (axis, corners) = RotatedBoxes.CellAnchors(double.Parse(stride), Values(defaults.GetProperty("ratios")),
            Values(defaults.GetProperty("scales")), Values(defaults.GetProperty("angles")));
        var expected = Reference.GetProperty("anchors").GetProperty(stride);
        Assert.Equal(27, axis.shape[0]);
        Float32Close(Rows(expected.GetProperty("axis_x1y1x2y2")), axis, $"axis anchors at stride {stride}");
        Float32Close(Rows(expected.GetProperty("rotated_corners_ordered")), corners,
            $"anchor corners at stride {stride}");
    }

    [Fact]
    public void BoxesTheirCodingAndDecodingEqualOdtks()
    {
        using var scope = NewDisposeScope();
        var rotate = Reference.GetProperty("rotate_boxes");
        var (axis, corners) = RotatedBoxes.FromXywhTheta(Rows(rotate.GetProperty("input_xywh_theta")));
        Float32Close(Rows(rotate.GetProperty("boxes_axis_x1y1x2y2_sin_cos")), axis, "rotate_boxes' axis form");
        Float32Close(Rows(rotate.GetProperty("corners_ordered_tl_tr_br_bl")), corners, "rotate_boxes' corners");

        var encode = Reference.GetProperty("box2delta_rotated");
        Float32Close(Rows(encode.GetProperty("deltas")),
            RotatedBoxes.Encode(Rows(encode.GetProperty("boxes_axis")), Rows(encode.GetProperty("anchors_axis"))),
            "box2delta_rotated");

        var decode = Reference.GetProperty("delta2box_rotated");
        var size = Values(decode.GetProperty("size"));
        double stride = decode.GetProperty("stride").GetDouble();
        var decoded = RotatedBoxes.Decode(Rows(decode.GetProperty("deltas")), Rows(decode.GetProperty("anchors_axis")),
            (size[0] * stride, size[1] * stride));
        Float32Close(Rows(decode.GetProperty("boxes_x1y1x2y2_theta")), decoded, "delta2box_rotated");
    }

    /// <summary>Corners of the box x, y, w, h (inclusive-pixel extent when <paramref name="inclusive"/>, as ODTK's
    /// rotate_box) turned by <paramref name="screenAngle"/> about its centre: positive turns anticlockwise as seen
    /// with y pointing down (a point right of the centre moves up).</summary>
    static (double X, double Y)[] Turned(double x, double y, double w, double h, double screenAngle, bool inclusive)
    {
        double e = inclusive ? 1 : 0, cx = x + (w - e) / 2, cy = y + (h - e) / 2;
        (double, double) Turn(double px, double py) =>
            (cx + Math.Cos(screenAngle) * (px - cx) + Math.Sin(screenAngle) * (py - cy),
            cy - Math.Sin(screenAngle) * (px - cx) + Math.Cos(screenAngle) * (py - cy));
        return [Turn(x, y), Turn(x + w - e, y), Turn(x + w - e, y + h - e), Turn(x, y + h - e)];
    }

    static bool SameCorners((double X, double Y)[] expected, float[] polygon) =>
        expected.All(c => Enumerable.Range(0, 4)
            .Any(j => Math.Abs(polygon[2 * j] - c.X) < 1e-2 && Math.Abs(polygon[2 * j + 1] - c.Y) < 1e-2));

    [Fact]
    public void OneConventionTurnsAnticlockwiseOnScreenUnlikeOdtksOutputPolygon()
    {
        using var scope = NewDisposeScope();
        var odtk = Reference.GetProperty("rotate_box");
        var input = Rows(odtk.GetProperty("input_xywh_theta"));
        var ours = RotatedBoxes.FromXywhTheta(input).Corners;
        var theirs = Rows(odtk.GetProperty("polygon_xy4"));
        for (int i = 0; i < input.shape[0]; i++)
        {
            var b = input[i].data<float>().ToArray();
            if (Math.Abs(b[4]) < 0.01) continue;
            Assert.True(
                SameCorners(Turned(b[0], b[1], b[2], b[3], b[4], inclusive: false), ours[i].data<float>().ToArray()),
                $"box {i}: our corners are not the box turned anticlockwise on screen by {b[4]}");
            // ODTK's output polygon turns the other way (and uses the inclusive extent x + w - 1)
            var theirCorners = theirs[i].data<float>().ToArray();
            Assert.True(SameCorners(Turned(b[0], b[1], b[2], b[3], -b[4], inclusive: true), theirCorners), $"box {i}");
            Assert.False(SameCorners(Turned(b[0], b[1], b[2], b[3], b[4], inclusive: true), theirCorners), $"box {i}");
        }
    }
}
