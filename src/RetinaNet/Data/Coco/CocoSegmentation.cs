using System.Globalization;
using System.Text.Json;

namespace RetinaNet.Data.Coco;

/// <summary>An object's region as a COCO file writes it: one or more polygons <c>[[x1, y1, x2, y2, ...], ...]</c>
/// (rotated boxes carry their 4 corners this way), or a run-length encoding <c>{"size": [h, w], "counts": ...}</c>
/// with the counts as a list or as pycocotools' compressed string. Kept as written: evaluation rasterises it.</summary>
public sealed record CocoSegmentation
{
    public IReadOnlyList<double[]>? Polygons { get; init; }
    /// <summary>RLE size (column-major runs over a height x width image), when it is an RLE.</summary>
    public int Height { get; init; }
    public int Width { get; init; }
    public uint[]? Counts { get; init; }
    public string? CompressedCounts { get; init; }

    public bool IsRle => Counts is not null || CompressedCounts is not null;

    public static CocoSegmentation OfPolygons(params double[][] polygons) => new() { Polygons = polygons };

    /// <summary>Reads "segmentation"; <paramref name="bad"/> makes the exception for a value of the wrong shape.
    /// </summary>
    public static CocoSegmentation Read(JsonElement v, Func<string, Exception> bad)
    {
        if (v.ValueKind == JsonValueKind.Array)
        {
            var polygons = new List<double[]>(v.GetArrayLength());
            foreach (var p in v.EnumerateArray())
            {
                if (p.ValueKind != JsonValueKind.Array) throw bad("must be a list of polygons [[x1, y1, x2, y2, ...], "
                    + "...]");
                var xy = new double[p.GetArrayLength()];
                int j = 0;
                foreach (var x in p.EnumerateArray())
                    xy[j++] = x.ValueKind == JsonValueKind.Number && x.TryGetDouble(out double d) && double.IsFinite(d)
                        ? d
                        : throw bad("has a polygon with a value that is not a finite number");
                polygons.Add(xy);
            }
            return new CocoSegmentation { Polygons = polygons };
        }
        if (v.ValueKind != JsonValueKind.Object || !v.TryGetProperty("size", out var size)
            || !v.TryGetProperty("counts", out var counts)
            || size.ValueKind != JsonValueKind.Array || size.GetArrayLength() != 2)
            throw bad("must be polygons [[x1, y1, ...], ...] or an RLE {\"size\": [h, w], \"counts\": ...}");
        int h = Dimension(size[0], bad), w = Dimension(size[1], bad);
        if (counts.ValueKind == JsonValueKind.String) return new CocoSegmentation { Height = h, Width = w,
            CompressedCounts = counts.GetString() };
        if (counts.ValueKind != JsonValueKind.Array) throw bad("has RLE counts that are neither a list nor a string");
        var runs = new uint[counts.GetArrayLength()];
        int k = 0;
        foreach (var c in counts.EnumerateArray())
            runs[k++] = c.ValueKind == JsonValueKind.Number && c.TryGetUInt32(out uint n) ? n
                : throw bad("has an RLE count that is not a non-negative integer");
        return new CocoSegmentation { Height = h, Width = w, Counts = runs };
    }

    static int Dimension(JsonElement e, Func<string, Exception> bad)
    {
        if (e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int x) && x >= 0) return x;
        throw bad("has an RLE size that is not [height, width]");
    }

    public void Write(Utf8JsonWriter w)
    {
        if (Polygons is not null)
        {
            w.WriteStartArray();
            foreach (var p in Polygons)
            {
                w.WriteStartArray();
                foreach (double x in p) w.WriteRawValue(x.ToString("R", CultureInfo.InvariantCulture),
                    skipInputValidation: true);
                w.WriteEndArray();
            }
            w.WriteEndArray();
            return;
        }
        w.WriteStartObject();
        w.WriteStartArray("size"); w.WriteNumberValue(Height); w.WriteNumberValue(Width); w.WriteEndArray();
        if (CompressedCounts is not null) w.WriteString("counts", CompressedCounts);
        else
        {
            w.WriteStartArray("counts");
            foreach (uint c in Counts!) w.WriteNumberValue(c);
            w.WriteEndArray();
        }
        w.WriteEndObject();
    }
}
