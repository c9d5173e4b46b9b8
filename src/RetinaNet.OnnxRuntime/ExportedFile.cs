using System.Text.Json;
using RetinaNet.Model;

namespace RetinaNet.OnnxRuntime;

/// <summary>The names an exported detector file (<c>retinanet export</c>) is read by: its inputs, outputs and
/// metadata keys. The exporter writes these and <see cref="OrtDetector"/> reads them.</summary>
public static class ExportedFile
{
    /// <summary>Input: uint8 RGB pixels [batch, 3, H, W], images at the top-left, anything on the padding.</summary>
    public const string Images = "images";
    /// <summary>Input: int64 [batch, 2], each image's (height, width) before padding; the padding is masked.</summary>
    public const string ImageSizes = "image_sizes";
    /// <summary>Outputs: [batch, D, 4] inclusive pixel corners in the padded input, [batch, D] scores (0 on padding
    /// rows), [batch, D] int64 class indices.</summary>
    public const string Boxes = "boxes", Scores = "scores", Classes = "classes";

    public const string LayoutKey = "retinanet.layout", ClassesKey = "retinanet.classes",
        PrecisionKey = "retinanet.precision", ResizeKey = "retinanet.resize", MaxSizeKey = "retinanet.max_size",
        CategoriesKey = "retinanet.categories";
    /// <summary>The <see cref="LayoutKey"/> of an export without decode and NMS (ODTK's network-only layout).</summary>
    public const string RawHeadsLayout = "raw-heads";

    /// <summary>The categories of <see cref="CategoriesKey"/> (JSON, [{id, name}] in class order); one clear line
    /// when they are not that.</summary>
    public static List<Category> ReadCategories(string path, string json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            return doc.RootElement.EnumerateArray()
                .Select(c => new Category(c.GetProperty("id").GetInt64(), c.GetProperty("name").GetString() ?? "")).ToList();
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException)
        {
            throw new InvalidDataException($"{path}: metadata {CategoriesKey} is not a list of {{id, name}}: {e.Message}");
        }
    }
}
