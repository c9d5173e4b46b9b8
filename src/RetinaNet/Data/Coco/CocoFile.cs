using System.Text.Json;

namespace RetinaNet.Data.Coco;

public sealed record CocoImageInfo(long Id, string FileName, int? Width, int? Height);

/// <summary>One object. <c>Area</c> is the file's <c>area</c> field (COCO's evaluator sorts objects into
/// small/medium/large by it, not by the box); when absent it is the box area.</summary>
/// <summary>One object. A rotated box (ODTK's <c>--rotated-bbox</c>) adds <see cref="Theta"/>: the bbox's fifth
/// value, radians anticlockwise on screen, about the centre of the axis-aligned x, y, w, h; its polygon is in
/// <see cref="Segmentation"/>.</summary>
public sealed record CocoAnnotation(long Id, long ImageId, long CategoryId, double X, double Y, double W, double H,
    double Area, bool IsCrowd, double? Theta = null, CocoSegmentation? Segmentation = null);

public sealed record CocoCategory(long Id, string Name, string? Supercategory = null);

/// <summary>A COCO-format annotation file as written, checked: every required field present and of the right
/// type, image and category ids unique, every annotation pointing at a known image and category. Errors are
/// <see cref="BadInputException"/>s naming the file, the entry and the fix. An image-list file without
/// <c>annotations</c> (a test set) is valid.</summary>
public sealed class CocoFile
{
    public string Path { get; }
    public IReadOnlyList<CocoImageInfo> Images { get; }
    public IReadOnlyList<CocoAnnotation> Annotations { get; }
    public IReadOnlyList<CocoCategory> Categories { get; }

    public CocoFile(string path, IReadOnlyList<CocoImageInfo> images, IReadOnlyList<CocoAnnotation> annotations,
        IReadOnlyList<CocoCategory> categories)
    {
        (Path, Images, Annotations, Categories) = (path, images, annotations, categories);
        Check();
    }

    public static CocoFile Load(string path)
    {
        if (Directory.Exists(path))
            throw new BadInputException(path, "is a directory, expected a COCO annotation .json file");
        if (!File.Exists(path)) throw new BadInputException(path, "annotation file not found; check the path given");
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BadInputException(path,
                $"cannot read the annotation file ({OneLine(e.Message)}); check its permissions");
        }
        return Parse(bytes, path);
    }

    /// <summary>The category ids alone, with images and annotations skipped unparsed (cheap on COCO-sized files):
    /// for command-line checks before any work. Null when the file does not read this way (<see cref="Load"/> says
    /// why, in detail).</summary>
    public static IReadOnlyList<long>? PeekCategoryIds(string path)
    {
        try
        {
            ReadOnlySpan<byte> json = File.ReadAllBytes(path);
            if (json.StartsWith(Utf8Bom)) json = json[Utf8Bom.Length..];
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { AllowTrailingCommas = true });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                bool categories = reader.ValueTextEquals("categories"u8);
                reader.Read();
                if (!categories) { reader.Skip(); continue; }
                using var doc = JsonDocument.ParseValue(ref reader);
                if (doc.RootElement.ValueKind != JsonValueKind.Array) return null;
                var ids = new List<long>();
                foreach (var c in doc.RootElement.EnumerateArray())
                {
                    if (c.ValueKind != JsonValueKind.Object || !c.TryGetProperty("id", out var id)) return null;
                    if (!id.TryGetInt64(out long v)) return null;
                    ids.Add(v);
                }
                return ids;
            }
            return null;
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException) { return null; }
    }

    public static CocoFile Parse(ReadOnlyMemory<byte> json, string path)
    {
        // Editors on Windows save UTF-8 with a byte-order mark, which the JSON reader rejects.
        if (json.Span.StartsWith(Utf8Bom)) json = json[Utf8Bom.Length..];
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true }); }
        catch (JsonException e)
        {
            string where = e.LineNumber is long line
                ? $" at line {line + 1}, column {(e.BytePositionInLine ?? 0) + 1}" : "";
            throw new BadInputException(path, $"not valid JSON{where} " +
                $"({OneLine(e.Message.Split(" Path:")[0].Split(" LineNumber:")[0].TrimEnd('.', ' '))}); " +
                "fix or re-export the file");
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new BadInputException(path,
                    "expected a COCO object with \"images\", \"annotations\" and \"categories\"");
            var reader = new EntryReader(path);
            var images = reader.Array(root, "images", required: true).Select((e, i) => new CocoImageInfo(
                reader.Long(e, "images", i, "id"), reader.String(e, "images", i, "file_name"),
                reader.OptionalSize(e, "images", i, "width"), reader.OptionalSize(e, "images", i, "height"))).ToList();
            var categories = reader.Array(root, "categories", required: true).Select((e, i) => new CocoCategory(
                reader.Long(e, "categories", i, "id"),
                reader.OptionalString(e, "name") ?? reader.Long(e, "categories", i, "id").ToString(),
                reader.OptionalString(e, "supercategory"))).ToList();
            var annotations = reader.Array(root, "annotations", required: false).Select((e, i) =>
            {
                var box = reader.Box(e, i);
                return new CocoAnnotation(reader.OptionalLong(e, "id") ?? i + 1,
                    reader.Long(e, "annotations", i, "image_id"),
                    reader.Long(e, "annotations", i, "category_id"), box[0], box[1], box[2], box[3],
                    reader.OptionalDouble(e, "area") ?? box[2] * box[3], reader.IsCrowd(e),
                    box.Length == 5 ? box[4] : null, reader.Segmentation(e, i));
            }).ToList();
            return new CocoFile(path, images, annotations, categories);
        }
    }

    void Check()
    {
        var imageIds = new HashSet<long>();
        foreach (var image in Images)
            if (string.IsNullOrWhiteSpace(image.FileName))
                throw new BadInputException(Path, $"image id {image.Id} has an empty \"file_name\"; " +
                    "give the image's path relative to the images folder");
            else if (!imageIds.Add(image.Id))
                throw new BadInputException(Path, $"image id {image.Id} appears twice in \"images\" " +
                    $"(second: {image.FileName}); image ids must be unique");
        var categoryIds = new HashSet<long>();
        foreach (var c in Categories)
            if (!categoryIds.Add(c.Id))
                throw new BadInputException(Path,
                    $"category id {c.Id} appears twice in \"categories\"; category ids must be unique");
        foreach (var a in Annotations)
        {
            // Values built in code (converters) never passed the reader's checks; JSON cannot hold NaN either.
            if (!(double.IsFinite(a.X) && double.IsFinite(a.Y) && double.IsFinite(a.W) && double.IsFinite(a.H)
                && double.IsFinite(a.Area)))
                throw new BadInputException(Path,
                    $"annotation {a.Id} has a non-finite bbox or area; every value must be a finite number");
            if (!imageIds.Contains(a.ImageId))
                throw new BadInputException(Path, $"annotation {a.Id} refers to image_id {a.ImageId}, " +
                    "which is not in \"images\"; add the image or remove the annotation");
            if (!categoryIds.Contains(a.CategoryId))
                throw new BadInputException(Path, $"annotation {a.Id} refers to category_id {a.CategoryId}, " +
                    "which is not in \"categories\"; add the category or remove the annotation");
        }
    }

    /// <summary>Writes the file (temp file + rename, so a crash never leaves half a file).</summary>
    public void Save(string path)
    {
        var temp = path + ".tmp";
        try
        {
            using var stream = File.Create(temp);
            using var w = new Utf8JsonWriter(stream);
            Write(w);
        }
        catch
        {
            File.Delete(temp); // no stray half file beside the output
            throw;
        }
        File.Move(temp, path, overwrite: true);
    }

    void Write(Utf8JsonWriter w)
    {
        {
            w.WriteStartObject();
            WriteImages(w, Images);
            w.WriteStartArray("annotations");
            foreach (var a in Annotations)
            {
                w.WriteStartObject();
                w.WriteNumber("id", a.Id); w.WriteNumber("image_id", a.ImageId);
                w.WriteNumber("category_id", a.CategoryId);
                w.WriteStartArray("bbox");
                w.WriteNumberValue(a.X); w.WriteNumberValue(a.Y); w.WriteNumberValue(a.W); w.WriteNumberValue(a.H);
                if (a.Theta is double theta) w.WriteNumberValue(theta);
                w.WriteEndArray();
                if (a.Segmentation is not null) { w.WritePropertyName("segmentation"); a.Segmentation.Write(w); }
                w.WriteNumber("area", a.Area); w.WriteNumber("iscrowd", a.IsCrowd ? 1 : 0);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            WriteCategories(w, Categories);
            w.WriteEndObject();
        }
    }

    static ReadOnlySpan<byte> Utf8Bom => [0xEF, 0xBB, 0xBF];

    /// <summary>Messages stay on one line: raw JSON excerpts (a pretty-printed bbox) are collapsed and
    /// shortened.</summary>
    internal static string OneLine(string text, int max = 80)
    {
        var s = string.Join(' ', text.Split((char[])['\r', '\n', '\t', ' '], StringSplitOptions.RemoveEmptyEntries));
        return s.Length <= max ? s : s[..(max - 3)] + "...";
    }

    /// <summary>The "images" list as COCO writes it (also used by detection files).</summary>
    public static void WriteImages(Utf8JsonWriter w, IEnumerable<CocoImageInfo> images)
    {
        w.WriteStartArray("images");
        foreach (var i in images)
        {
            w.WriteStartObject();
            w.WriteNumber("id", i.Id); w.WriteString("file_name", i.FileName);
            if (i.Width is int width) w.WriteNumber("width", width);
            if (i.Height is int height) w.WriteNumber("height", height);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    /// <summary>The "categories" list as COCO writes it.</summary>
    public static void WriteCategories(Utf8JsonWriter w, IEnumerable<CocoCategory> categories)
    {
        w.WriteStartArray("categories");
        foreach (var c in categories)
        {
            w.WriteStartObject();
            w.WriteNumber("id", c.Id); w.WriteString("name", c.Name);
            if (c.Supercategory is not null) w.WriteString("supercategory", c.Supercategory);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    /// <summary>Field access with errors that say which entry lacks what.</summary>
    /// <summary>A JSON number with no fraction (1 and 1.0 alike, as Python's json gives ids) as a long; null for
    /// anything else.</summary>
    internal static long? WholeNumber(JsonElement v)
    {
        if (v.ValueKind != JsonValueKind.Number) return null;
        if (v.TryGetInt64(out long x)) return x;
        return v.TryGetDouble(out double d) && d == Math.Floor(d) && Math.Abs(d) < 9e15 ? (long)d : null;
    }

    sealed class EntryReader(string path)
    {
        public IEnumerable<JsonElement> Array(JsonElement root, string name, bool required)
        {
            if (!root.TryGetProperty(name, out var array))
            {
                if (required)
                    throw new BadInputException(path, $"no \"{name}\" list; a COCO annotation file needs " +
                        "\"images\" and \"categories\" (and \"annotations\" to train)");
                return [];
            }
            if (array.ValueKind != JsonValueKind.Array)
                throw new BadInputException(path, $"\"{name}\" must be a list, found {array.ValueKind}");
            return array.EnumerateArray();
        }

        JsonElement Field(JsonElement e, string list, int index, string field)
        {
            if (e.ValueKind != JsonValueKind.Object)
                throw new BadInputException(path, $"{list}[{index}] must be an object");
            if (!e.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null)
                throw new BadInputException(path,
                    $"{list}[{index}] has no \"{field}\"; every entry of \"{list}\" needs one");
            return v;
        }

        public long Long(JsonElement e, string list, int index, string field)
        {
            var v = Field(e, list, index, field);
            if (WholeNumber(v) is long x) return x;
            throw new BadInputException(path,
                $"{list}[{index}].{field} must be an integer, found {OneLine(v.GetRawText())}");
        }

        public string String(JsonElement e, string list, int index, string field)
        {
            var v = Field(e, list, index, field);
            return v.ValueKind == JsonValueKind.String ? v.GetString()!
                : throw new BadInputException(path,
                    $"{list}[{index}].{field} must be a string, found {OneLine(v.GetRawText())}");
        }

        public double[] Box(JsonElement e, int index)
        {
            var v = Field(e, "annotations", index, "bbox");
            if (v.ValueKind != JsonValueKind.Array || v.GetArrayLength() is not (4 or 5)
                || v.EnumerateArray().Any(x => x.ValueKind != JsonValueKind.Number))
                throw new BadInputException(path, $"annotations[{index}].bbox must be 4 numbers " +
                    "[x, y, width, height] (or 5 with a rotated box's angle), " +
                    $"found {OneLine(v.GetRawText())}");
            var box = v.EnumerateArray().Select(x => x.GetDouble()).ToArray();
            if (box.Any(x => !double.IsFinite(x)))
                throw new BadInputException(path, $"annotations[{index}].bbox has a non-finite value");
            return box;
        }

        public CocoSegmentation? Segmentation(JsonElement e, int index) =>
            e.TryGetProperty("segmentation", out var v) && v.ValueKind != JsonValueKind.Null
                ? CocoSegmentation.Read(v,
                    why => new BadInputException(path, $"annotations[{index}].segmentation {why}"))
                : null;

        /// <summary>An optional image dimension: absent or null is unknown; present, it must be a positive
        /// int.</summary>
        public int? OptionalSize(JsonElement e, string list, int index, string field)
        {
            if (!e.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            long x = Long(e, list, index, field);
            return x is > 0 and <= int.MaxValue ? (int)x
                : throw new BadInputException(path, $"{list}[{index}].{field} must be a positive number of pixels, " +
                    $"found {x}; fix it or leave it out");
        }
        public static long? OptionalLongOf(JsonElement e, string field) =>
            e.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.Number
                ? (v.TryGetInt64(out long x) ? x : (long)v.GetDouble()) : null;
        public long? OptionalLong(JsonElement e, string field) => OptionalLongOf(e, field);
        /// <summary>COCO writes iscrowd as 0/1; some tools write true/false.</summary>
        public bool IsCrowd(JsonElement e) =>
            e.TryGetProperty("iscrowd", out var v)
                && (v.ValueKind == JsonValueKind.True || (OptionalLongOf(e, "iscrowd") ?? 0) != 0);
        public double? OptionalDouble(JsonElement e, string field) =>
            e.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;
        public string? OptionalString(JsonElement e, string field) =>
            e.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
    }
}

/// <summary>COCO category ids ↔ the model's contiguous class indices, in sorted id order (ODTK's
/// <c>getCatIds()</c>), so COCO's 1..90 with gaps become 0..79.</summary>
public sealed class CategoryMap
{
    readonly long[] ids;
    readonly Dictionary<long, int> index;
    public IReadOnlyList<string> Names { get; }

    public CategoryMap(IEnumerable<CocoCategory> categories)
    {
        var sorted = categories.OrderBy(c => c.Id).ToArray();
        ids = sorted.Select(c => c.Id).ToArray();
        Names = sorted.Select(c => c.Name).ToArray();
        index = ids.Select((id, i) => (id, i)).ToDictionary(p => p.id, p => p.i);
    }

    public int Count => ids.Length;
    public int ClassIndexOf(long categoryId) => index.TryGetValue(categoryId, out int i) ? i
        : throw new KeyNotFoundException($"category id {categoryId} is not in the annotation file's categories");
    public long CategoryIdOf(int classIndex) => ids[classIndex];
    public IReadOnlyList<long> CategoryIds => ids;
}
