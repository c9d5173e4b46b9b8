using System.Globalization;
using System.Text.Json;
using RetinaNet.Data;
using RetinaNet.Data.Coco;

namespace RetinaNet.Evaluation;

/// <summary>Detection files: ODTK's infer output (<c>{"annotations": [...], "images": ..., "categories": ...}</c>) or
/// a plain COCO results list (<c>[{image_id, category_id, bbox, score}, ...]</c>). Errors are
/// <see cref="BadInputException"/>s naming the file, the entry and the field.</summary>
public static class DetectionsFile
{
    public static IReadOnlyList<CocoDetection> Read(string path)
    {
        if (!File.Exists(path)) throw new BadInputException(path, "detections file not found; check the path given");
        return Parse(File.ReadAllBytes(path), path);
    }

    public static IReadOnlyList<CocoDetection> Parse(ReadOnlyMemory<byte> json, string path)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true }); }
        catch (JsonException e)
        {
            throw new BadInputException(path,
                $"not valid JSON ({e.Message.Split(" Path:")[0].TrimEnd('.')}); fix or re-write the file");
        }
        using (doc)
        {
            var root = doc.RootElement;
            JsonElement list;
            string name;
            if (root.ValueKind == JsonValueKind.Array) (list, name) = (root, "detections");
            else if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("annotations", out list))
                name = "annotations";
            else
                throw new BadInputException(path,
                    "expected a COCO results list [{image_id, category_id, bbox, score}, ...] " +
                    "or an object with \"annotations\" (ODTK's detections file)");
            if (list.ValueKind != JsonValueKind.Array)
                throw new BadInputException(path, $"\"{name}\" must be a list, found {list.ValueKind}");
            var detections = new List<CocoDetection>(list.GetArrayLength());
            int i = 0;
            foreach (var e in list.EnumerateArray())
            {
                var entry = new Entry(path, name, i++, e);
                var box = entry.Box();
                detections.Add(new CocoDetection(entry.Id("image_id"), entry.Id("category_id"),
                    box[0], box[1], box[2], box[3], entry.Number("score"), box.Length == 5 ? box[4] : null,
                    entry.Segmentation()));
            }
            return detections;
        }
    }

    /// <summary>Checks that every detection refers to an image and a category of the ground truth (pycocotools'
    /// loadRes asserts the images; a detection of an unknown category would silently count for nothing).</summary>
    public static void Validate(IReadOnlyList<CocoDetection> detections, CocoFile groundTruth, string path)
    {
        var images = new HashSet<long>(groundTruth.Images.Count);
        foreach (var image in groundTruth.Images) images.Add(image.Id);
        var categories = new HashSet<long>(groundTruth.Categories.Count);
        foreach (var c in groundTruth.Categories) categories.Add(c.Id);
        int badImages = 0, badCategories = 0, firstImage = -1, firstCategory = -1;
        for (int i = 0; i < detections.Count; i++)
        {
            if (!images.Contains(detections[i].ImageId) && badImages++ == 0) firstImage = i;
            if (!categories.Contains(detections[i].CategoryId) && badCategories++ == 0) firstCategory = i;
        }
        if (badImages > 0)
            throw new BadInputException(path,
                $"{badImages} detection(s) refer to images not in the ground truth {groundTruth.Path} " +
                $"(first: detection {firstImage}, image_id {detections[firstImage].ImageId}); " +
                "evaluate against the annotations the detections were made for");
        if (badCategories > 0)
            throw new BadInputException(path,
                $"{badCategories} detection(s) refer to categories not in the ground truth {groundTruth.Path} " +
                $"(first: detection {firstCategory}, category_id {detections[firstCategory].CategoryId}); " +
                "category ids must be the annotation file's");
    }

    /// <summary>Writes ODTK's detections file: the detections as "annotations", plus the ground truth's images and
    /// categories (ODTK wraps categories in one more list; we write the plain list, and only "annotations" is
    /// read).</summary>
    public static void WriteOdtk(string path, IReadOnlyList<CocoDetection> detections, CocoFile imagesAndCategories) =>
        WriteAtomically(path, w =>
        {
            w.WriteStartObject();
            w.WritePropertyName("annotations");
            WriteList(w, detections);
            CocoFile.WriteImages(w, imagesAndCategories.Images);
            CocoFile.WriteCategories(w, imagesAndCategories.Categories);
            w.WriteEndObject();
        });

    /// <summary>JSON Lines, one image a line in the images' order, for a program reading as results come:
    /// <c>{"image_id": 0, "file_name": "a.jpg", "detections": [{"category_id": 1, "name": "cat", "score": 0.9,
    /// "bbox": [x, y, w, h]}, ...]}</c> (a name where the categories are known).</summary>
    public static void WriteJsonLines(TextWriter output, IReadOnlyList<CocoDetection> detections, CocoFile images)
    {
        var names = images.Categories.ToDictionary(c => c.Id, c => c.Name);
        var byImage = detections.ToLookup(d => d.ImageId);
        using var buffer = new MemoryStream();
        foreach (var image in images.Images)
        {
            buffer.SetLength(0);
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                w.WriteNumber("image_id", image.Id);
                w.WriteString("file_name", image.FileName);
                w.WriteStartArray("detections");
                foreach (var d in byImage[image.Id])
                {
                    w.WriteStartObject();
                    w.WriteNumber("category_id", d.CategoryId);
                    if (names.TryGetValue(d.CategoryId, out var name)) w.WriteString("name", name);
                    w.WritePropertyName("score");
                    Number(w, d.Score);
                    w.WriteStartArray("bbox");
                    Number(w, d.X); Number(w, d.Y); Number(w, d.W); Number(w, d.H);
                    w.WriteEndArray();
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            output.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
        }
        output.Flush();
    }

    /// <summary>Writes a plain COCO results list, what pycocotools' loadRes reads.</summary>
    public static void WriteCocoResults(string path, IReadOnlyList<CocoDetection> detections) =>
        WriteAtomically(path, w => WriteList(w, detections));

    static void WriteList(Utf8JsonWriter w, IReadOnlyList<CocoDetection> detections)
    {
        w.WriteStartArray();
        foreach (var d in detections)
        {
            w.WriteStartObject();
            w.WriteNumber("image_id", d.ImageId);
            w.WriteNumber("category_id", d.CategoryId);
            w.WriteStartArray("bbox");
            Number(w, d.X); Number(w, d.Y); Number(w, d.W); Number(w, d.H);
            if (d.Theta is double theta) Number(w, theta);
            w.WriteEndArray();
            if (d.Segmentation is not null) { w.WritePropertyName("segmentation"); d.Segmentation.Write(w); }
            w.WritePropertyName("score");
            Number(w, d.Score);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    // "R": the shortest text that reads back to the same double (a widened float32 reads back to itself too).
    static void Number(Utf8JsonWriter w, double v) =>
        w.WriteRawValue(v.ToString("R", CultureInfo.InvariantCulture), skipInputValidation: true);

    // temporary file, then rename (as checkpoints): a failed or killed write never leaves a truncated file at path
    internal static void WriteAtomically(string path, Action<Utf8JsonWriter> write) =>
        Core.AtomicFile.Write(path, stream =>
        {
            using var w = new Utf8JsonWriter(stream);
            write(w);
        });

    /// <summary>One detection entry, with errors that name it.</summary>
    readonly struct Entry(string path, string list, int index, JsonElement e)
    {
        const string Needs = "every detection needs image_id, category_id, bbox [x, y, width, height] and score";

        JsonElement Field(string field)
        {
            if (e.ValueKind != JsonValueKind.Object)
                throw new BadInputException(path, $"{list}[{index}] must be an object, found {e.ValueKind}");
            if (!e.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null)
                throw new BadInputException(path, $"{list}[{index}] has no \"{field}\"; {Needs}");
            return v;
        }

        public long Id(string field)
        {
            var v = Field(field);
            if (CocoFile.WholeNumber(v) is long x) return x;
            throw new BadInputException(path, $"{list}[{index}].{field} must be an integer, found {v.GetRawText()}");
        }

        /// <summary>The file's double, as pycocotools' json.load reads it; never rounded to float.</summary>
        public double Number(string field)
        {
            var v = Field(field);
            if (v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double x) && double.IsFinite(x)) return x;
            throw new BadInputException(path,
                $"{list}[{index}].{field} must be a finite number, found {v.GetRawText()}");
        }

        public double[] Box()
        {
            var v = Field("bbox");
            if (v.ValueKind != JsonValueKind.Array || v.GetArrayLength() is not (4 or 5))
                throw new BadInputException(path, $"{list}[{index}].bbox must be 4 numbers [x, y, width, height] " +
                    $"(5 with a rotated box's angle), found {v.GetRawText()}");
            var box = new double[v.GetArrayLength()];
            int j = 0;
            foreach (var x in v.EnumerateArray())
            {
                if (x.ValueKind != JsonValueKind.Number || !x.TryGetDouble(out double value) || !double.IsFinite(value))
                    throw new BadInputException(path,
                        $"{list}[{index}].bbox must be finite numbers [x, y, width, height(, angle)], " +
                        $"found {v.GetRawText()}");
                box[j++] = value;
            }
            return box;
        }

        public CocoSegmentation? Segmentation()
        {
            if (!e.TryGetProperty("segmentation", out var v) || v.ValueKind == JsonValueKind.Null) return null;
            string where = $"{list}[{index}].segmentation", file = path;
            return CocoSegmentation.Read(v, why => new BadInputException(file, $"{where} {why}"));
        }
    }
}
