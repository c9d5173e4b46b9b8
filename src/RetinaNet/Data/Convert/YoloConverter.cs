using System.Globalization;

namespace RetinaNet.Data.Converters;

/// <summary>YOLO labels → COCO. Every image under the source folder (<see cref="ImageFolder"/> order) is one COCO
/// image; its label file is found as Ultralytics does (the last <c>images</c> folder of its path replaced by
/// <c>labels</c>, extension <c>.txt</c>) or, failing that, beside it with the same stem. Images without a label file
/// (or with an empty one) are kept as negatives. A label file under a <c>labels</c> folder without an image is an
/// error. <para>Each label line is <c>class cx cy w h</c>, the centre and size normalised to [0, 1] by the image size,
/// which is read from the image header (<see cref="ImageHeader"/>): x = (cx - w/2) * W, y = (cy - h/2) * H, w * W, h *
/// H. Class names come from <see cref="YoloClassNames"/> (searched in the source folder, then the label folders);
/// category id = class index + 1, so the YOLO order is kept.</para></summary>
public static class YoloConverter
{
    public static Conversion Convert(string source, string imagesRoot, string outputPath)
    {
        var images = ImageFolder.List(source);
        var labels = new Dictionary<string, string>(); // image → label file
        foreach (var image in images)
            if (LabelFor(image) is string label) labels[image] = label;

        var labelDirs = labels.Values.Select(l => Path.GetDirectoryName(l)!).Distinct().Order(StringComparer.Ordinal);
        string namesFile = YoloClassNames.Find([source, .. labelDirs])
            ?? throw new BadInputException(source,
            $"no class names: put classes.txt (one name a line) or data.yaml (names: [...]) in {source}");
        var names = YoloClassNames.Load(namesFile);
        CheckOrphanLabels(source, labels.Values.ToHashSet(), namesFile);

        var builder = new CocoBuilder(imagesRoot);
        foreach (var image in images)
        {
            var size = ImageHeader.Read(image);
            long id = builder.AddImage(image, size.Width, size.Height, labels.GetValueOrDefault(image, image));
            if (labels.TryGetValue(image, out var label)) AddLabels(builder, id, label, size, names);
        }
        return builder.Build(outputPath, names);
    }

    /// <summary>The label file of an image: under the <paramref name="labelsFolder"/> that replaces the last
    /// <c>images</c> folder of its path, or beside it; same stem, <c>.txt</c>.</summary>
    internal static string? LabelFor(string image, string labelsFolder = "labels")
    {
        string dir = Path.GetDirectoryName(image)!, stem = Path.GetFileNameWithoutExtension(image);
        var parts = dir.Split(Path.DirectorySeparatorChar);
        int i = Array.LastIndexOf(parts, "images");
        if (i >= 0)
        {
            parts[i] = labelsFolder;
            string ultralytics = Path.Combine(string.Join(Path.DirectorySeparatorChar, parts), stem + ".txt");
            if (File.Exists(ultralytics)) return ultralytics;
        }
        string beside = Path.Combine(dir, stem + ".txt");
        return File.Exists(beside) ? beside : null;
    }

    /// <summary>A .txt under a <c>labels</c> folder that no image claimed has lost its image.</summary>
    static void CheckOrphanLabels(string source, HashSet<string> used, string namesFile)
    {
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true,
            MatchCasing = MatchCasing.CaseInsensitive };
        foreach (var txt in Directory.EnumerateFiles(source, "*.txt", options).Order(StringComparer.Ordinal))
        {
            if (used.Contains(txt) || txt == namesFile) continue;
            var parts = Path.GetRelativePath(source, txt).Split(Path.DirectorySeparatorChar);
            if (parts[..^1].Contains("labels"))
                throw new BadInputException(txt,
                    $"label file without an image (no {Path.GetFileNameWithoutExtension(txt)}.jpg/.jpeg/.png/.bmp in "
                    + "the matching images folder or beside it); add the image or remove the label");
        }
    }

    static void AddLabels(CocoBuilder builder, long imageId, string label, ImageSize size, IReadOnlyList<string> names)
    {
        var lines = File.ReadAllLines(label);
        for (int n = 0; n < lines.Length; n++)
        {
            var fields = lines[n].Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length == 0) continue;
            string where = $"line {n + 1}";
            if (fields.Length != 5)
                throw new BadInputException(label,
                    $"{where}: expected 5 values (class cx cy w h), found {fields.Length}; segmentation polygons are "
                    + "not supported");
            if (!double.TryParse(fields[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double c)
                || c != Math.Floor(c))
                throw new BadInputException(label, $"{where}: class must be a whole number, found '{fields[0]}'");
            if (c < 0 || c >= names.Count)
                throw new BadInputException(label,
                    $"{where}: class {fields[0]} is out of range; the class names list {names.Count} classes "
                    + $"(0..{names.Count - 1})");
            var v = new double[4];
            for (int k = 0; k < 4; k++)
                if (!double.TryParse(fields[k + 1], NumberStyles.Float, CultureInfo.InvariantCulture, out v[k])
                    || !(v[k] >= 0 && v[k] <= 1))
                    throw new BadInputException(label,
                        $"{where}: '{fields[k + 1]}' is not a number in [0, 1]; YOLO coordinates are normalised by the "
                        + "image size");
            double w = v[2] * size.Width, h = v[3] * size.Height;
            builder.AddObject(imageId, names[(int)c], v[0] * size.Width - w / 2, v[1] * size.Height - h / 2, w, h);
        }
    }
}
