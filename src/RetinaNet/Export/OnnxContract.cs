using System.Globalization;
using System.Text.Json;
using RetinaNet.Data.Loading;
using RetinaNet.Model;

namespace RetinaNet.Export;

/// <summary>What an exported graph takes and gives, written into its metadata (<c>retinanet.input</c>,
/// <c>retinanet.outputs</c>, JSON) so a program in any language can feed it and read it without this library:
/// names, types, shapes, pixel format, normalisation, the resize the model was trained for, and what each output
/// value means.</summary>
static class OnnxContract
{
    public const string InputKey = "retinanet.input", OutputsKey = "retinanet.outputs";

    static string Numbers(float[] values) =>
        "[" + string.Join(", ", values.Select(v => ((double)v).ToString("0.###", CultureInfo.InvariantCulture))) + "]";

    public static string Input(ExportOptions options, DetectorConfig config)
    {
        int h = options.Height, w = options.Width;
        var resize =
            FormattableString.Invariant($"scale each image so its shorter side is {config.Inference.Resize} px ")
            + FormattableString.Invariant($"and its longer at most {config.Inference.MaxSize} px (retinanet.resize, ")
            + FormattableString.Invariant($"retinanet.max_size), never past {h}x{w}");
        object contract = options.RawHeads
            ? new Dictionary<string, object>
            {
                [OnnxNames.RawInput] = new { type = "float32", shape = new object[] { "batch", 3, h, w },
                    pixels = $"RGB, x / 255, minus mean {Numbers(DeviceBatch.Mean)}, " +
                        $"divided by std {Numbers(DeviceBatch.Std)} per channel; " +
                        "each image at the top-left, 0 on the padding" },
                ["resize"] = resize,
            }
            : new Dictionary<string, object>
            {
                [OnnxNames.Images] = new { type = "uint8", shape = new object[] { "batch", 3, h, w },
                    pixels = "RGB 0..255, channels first; each image at the top-left, anything on the padding" },
                [OnnxNames.ImageSizes] = new { type = "int64", shape = new object[] { "batch", 2 },
                    meaning = "each image's height and width in the input (after resizing); " +
                        "the rest is padding, masked" },
                ["normalisation"] = $"inside the graph: x / 255, minus mean {Numbers(DeviceBatch.Mean)}, " +
                    $"divided by std {Numbers(DeviceBatch.Std)} per channel",
                ["resize"] = resize,
            };
        return JsonSerializer.Serialize(contract);
    }

    public static string Outputs(ExportOptions options, DetectorConfig config)
    {
        int a = config.Anchors.Count, c = config.Classes, d = config.Inference.Detections;
        object contract = options.RawHeads
            ? new Dictionary<string, object>
            {
                ["score_1..score_5"] = new { type = "float32",
                    shape = new object[] { "batch", a * c, "H / stride", "W / stride" },
                    meaning = "sigmoid class scores of pyramid levels P3..P7 (strides 8..128), " +
                        $"channel = anchor * {c} + class" },
                ["box_1..box_5"] = new { type = "float32",
                    shape = new object[] { "batch", a * config.BoxValues, "H / stride", "W / stride" },
                    meaning = config.Rotated
                        ? "box deltas (dx, dy, log dw, log dh, sin, cos) per anchor, ODTK's rotated coding; " +
                            "decode and NMS are the caller's"
                        : "box deltas (dx, dy, log dw, log dh) per anchor, ODTK's coding; " +
                            "decode and NMS are the caller's" },
            }
            : new Dictionary<string, object>
            {
                [OnnxNames.Boxes] = new { type = "float32", shape = new object[] { "batch", d, 4 },
                    meaning = "x1, y1, x2, y2: inclusive pixel corners in the input " +
                        "(divide by the resize scale for the original image)" },
                [OnnxNames.Scores] = new { type = "float32", shape = new object[] { "batch", d },
                    meaning = "detection score, best first; 0 on rows past the detections found" },
                [OnnxNames.Classes] = new { type = "int64", shape = new object[] { "batch", d },
                    meaning = "class index: position in retinanet.categories" },
            };
        return JsonSerializer.Serialize(contract);
    }
}
