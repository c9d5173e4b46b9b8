using System.Globalization;
using System.Xml;
using System.Xml.Linq;

namespace RetinaNet.Data.Converters;

/// <summary>Pascal VOC XML → COCO. Reads every <c>.xml</c> under the source folder (ordinal order of relative
/// paths): a VOC root (<c>Annotations/</c> + <c>JPEGImages/</c>, also nested as in VOCdevkit) or a flat folder of XML
/// files and images.
/// <para>Coordinates: VOC's bndbox gives 1-based inclusive pixel indices (xmin = 1 is the first column, a box over
/// the whole image ends at xmax = width). In continuous coordinates that box spans [xmin - 1, xmax], so
/// x = xmin - 1, w = xmax - xmin + 1 (and likewise for y, h).</para>
/// <para>Objects marked <c>difficult</c> are kept as normal boxes (not crowd regions: COCO's iscrowd means "a group
/// of objects", and marking them would hide them from training); the summary reports how many there were.
/// Categories are the object names sorted ordinally, with ids 1..K. Sizes come from <c>size</c>, or the image
/// header when the XML lacks them (some tools write 0).</para></summary>
public static class VocConverter
{
    public static Conversion Convert(string source, string imagesRoot, string outputPath)
    {
        if (!Directory.Exists(source)) throw new BadInputException(source, "VOC folder not found; check SOURCE");
        var options = new EnumerationOptions
        {
            RecurseSubdirectories = true, IgnoreInaccessible = true, MatchCasing = MatchCasing.CaseInsensitive
        };
        var xmls = Directory.EnumerateFiles(source, "*.xml", options).Order(StringComparer.Ordinal).ToArray();
        if (xmls.Length == 0)
            throw new BadInputException(source, "no VOC annotation files (.xml) found; " +
                "point SOURCE at a VOC root (Annotations/, JPEGImages/) or a folder of .xml files");
        var builder = new CocoBuilder(imagesRoot);
        int difficult = 0;
        foreach (var xml in xmls) difficult += Add(builder, xml, imagesRoot);
        var names = builder.CategoryNames.Order(StringComparer.Ordinal).ToArray();
        return builder.Build(outputPath, names, difficult);
    }

    /// <summary>Adds one XML file's image and objects; returns its number of difficult objects.</summary>
    static int Add(CocoBuilder builder, string xml, string imagesRoot)
    {
        XElement root;
        try { root = XDocument.Load(xml, LoadOptions.SetLineInfo).Root!; }
        catch (XmlException e)
        {
            throw new BadInputException(xml, $"malformed XML at line {e.LineNumber} " +
                $"({Coco.CocoFile.OneLine(e.Message, 120)}); fix or remove the file");
        }
        if (root.Name.LocalName != "annotation")
            throw new BadInputException(xml, $"not a VOC annotation (root element <{root.Name.LocalName}>, " +
                "expected <annotation>); move it out of SOURCE");
        string image = FindImage(xml, root.Element("filename")?.Value.Trim(), imagesRoot);
        int? width = PositiveOrNull(root.Element("size")?.Element("width"), xml),
            height = PositiveOrNull(root.Element("size")?.Element("height"), xml);
        if (width is null || height is null)
        {
            var size = ImageHeader.Read(image);
            (width, height) = (size.Width, size.Height);
        }
        long id = builder.AddImage(image, width, height, xml);
        int difficult = 0, index = 0;
        foreach (var obj in root.Elements("object"))
        {
            string where = $"object {++index} (line {((IXmlLineInfo)obj).LineNumber})";
            string name = obj.Element("name")?.Value.Trim() is { Length: > 0 } n ? n
                : throw new BadInputException(xml, $"{where} has no <name>; every object needs its class name");
            var box = obj.Element("bndbox") ?? throw new BadInputException(xml, $"{where} ({name}) has no <bndbox>");
            double xmin = Number(box, "xmin", xml, where), ymin = Number(box, "ymin", xml, where);
            double xmax = Number(box, "xmax", xml, where), ymax = Number(box, "ymax", xml, where);
            if (xmax < xmin || ymax < ymin)
                throw new BadInputException(xml,
                    $"{where} ({name}) has xmax < xmin or ymax < ymin ({xmin} {ymin} {xmax} {ymax}); fix the box");
            builder.AddObject(id, name, xmin - 1, ymin - 1, xmax - xmin + 1, ymax - ymin + 1);
            if (obj.Element("difficult")?.Value.Trim() == "1") difficult++;
        }
        return difficult;
    }

    /// <summary>The image an XML file describes: its <c>filename</c> (or, failing that, the XML's own name with an
    /// image extension) in a sibling <c>JPEGImages/</c> of an <c>Annotations/</c> folder, beside the XML, or in the
    /// images root.</summary>
    static string FindImage(string xml, string? fileName, string imagesRoot)
    {
        string dir = Path.GetDirectoryName(xml)!;
        var folders = new List<string>();
        if (Path.GetFileName(dir).Equals("Annotations", StringComparison.OrdinalIgnoreCase))
            folders.Add(Path.Combine(Path.GetDirectoryName(dir)!, "JPEGImages"));
        folders.AddRange([dir, imagesRoot]);
        var names = new List<string>();
        if (!string.IsNullOrEmpty(fileName)) names.Add(Path.GetFileName(fileName));
        names.AddRange(ImageFolder.Extensions.Select(e => Path.GetFileNameWithoutExtension(xml) + e));
        foreach (var folder in folders)
            foreach (var name in names)
                if (File.Exists(Path.Combine(folder, name))) return Path.Combine(folder, name);
        throw new BadInputException(xml, $"image '{fileName ?? Path.GetFileNameWithoutExtension(xml)}' not found " +
            $"(looked in {string.Join(", ", folders.Distinct())}); add the image or remove the XML file");
    }

    static double Number(XElement box, string field, string xml, string where)
    {
        string? text = box.Element(field)?.Value.Trim();
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v)
            && double.IsFinite(v)
            ? v
            : throw new BadInputException(xml,
                $"{where}: <bndbox><{field}> must be a number, found '{text ?? "(missing)"}'");
    }

    static int? PositiveOrNull(XElement? e, string xml)
    {
        if (e is null || string.IsNullOrWhiteSpace(e.Value)) return null;
        return double.TryParse(e.Value.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double v)
            && v >= 0 && v <= int.MaxValue && v == Math.Floor(v)
            ? (v > 0 ? (int)v : null)
            : throw new BadInputException(xml,
                $"<size><{e.Name.LocalName}> must be a whole number of pixels, found '{e.Value.Trim()}'");
    }
}
