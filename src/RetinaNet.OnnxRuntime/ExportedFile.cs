using System.Globalization;
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

    /// <summary>What a file says about itself, from its metadata and its <see cref="Images"/> input's dimensions
    /// (null when it has no such input); one clear line naming <paramref name="path"/> when it is not a detector
    /// exported by <c>retinanet export</c> with decode and NMS in the graph.</summary>
    public static ExportedModel Describe(string path, IReadOnlyDictionary<string, string> metadata,
        IReadOnlyList<long>? imageDims)
    {
        if (metadata.GetValueOrDefault(LayoutKey) == RawHeadsLayout)
            throw new InvalidDataException($"{path} was exported with --raw-heads (ODTK's network-only layout, no "
                + "decode or NMS): "
                + "re-export it without --raw-heads");
        if (imageDims is not { Count: 4 } || imageDims[2] <= 0 || imageDims[3] <= 0
            || !int.TryParse(metadata.GetValueOrDefault(ClassesKey), CultureInfo.InvariantCulture, out int classes)
            || classes <= 0)
            throw new InvalidDataException($"{path} is not a detector exported by retinanet export "
                + $"(needs input '{Images}' [batch, 3, H, W] and {ClassesKey} metadata)");
        int? Size(string key) => int.TryParse(metadata.GetValueOrDefault(key), CultureInfo.InvariantCulture, out int n)
            && n > 0 ? n : null;
        var categories = metadata.TryGetValue(CategoriesKey, out var json) ? ReadCategories(path, json) : [];
        if (categories.Count != 0 && categories.Count != classes)
            throw new InvalidDataException($"{path}: {categories.Count} categories in {CategoriesKey} for {classes} "
                + "classes");
        return new((int)imageDims[2], (int)imageDims[3], classes, metadata.GetValueOrDefault(PrecisionKey, "fp32"),
            Size(ResizeKey), Size(MaxSizeKey), categories);
    }

    /// <summary>The categories of <see cref="CategoriesKey"/> (JSON, [{id, name}] in class order); one clear line
    /// when they are not that.</summary>
    public static List<Category> ReadCategories(string path, string json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            return doc.RootElement.EnumerateArray()
                .Select(c => new Category(c.GetProperty("id").GetInt64(), c.GetProperty("name").GetString()
                ?? "")).ToList();
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException)
        {
            throw new InvalidDataException($"{path}: metadata {CategoriesKey} is not a list of {{id, name}}: "
                + $"{e.Message}");
        }
    }
}

/// <summary>What an exported detector file says about itself: fixed input size, classes, precision (fp32, fp16, int8);
/// <see cref="Resize"/> and <see cref="MaxSize"/>: the checkpoint's input scale, and <see cref="Categories"/>: the
/// training categories in class order (null and empty in older exports).</summary>
public sealed record ExportedModel(int Height, int Width, int Classes, string Precision, int? Resize, int? MaxSize,
    IReadOnlyList<Category> Categories);
