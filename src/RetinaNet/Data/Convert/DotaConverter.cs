using System.Globalization;
using RetinaNet.Boxes;

namespace RetinaNet.Data.Converters;

/// <summary>DOTA (aerial images, oriented objects) → COCO with rotated boxes. Every image under the source folder is
/// one COCO image; its label file is DOTA's <c>labelTxt/NAME.txt</c> beside the <c>images</c> folder, or a
/// <c>.txt</c> of the same stem beside the image. A label line is <c>x1 y1 x2 y2 x3 y3 x4 y4 category
/// difficult</c> (pixels); the <c>imagesource:</c> and <c>gsd:</c> header lines are skipped. Each quadrilateral
/// becomes its smallest-area rectangle (itself when it is one) as ODTK's rotated bbox [x, y, w, h, theta], with the
/// rectangle's corners as the segmentation and area w * h. Categories are numbered 1..K in name order. Objects
/// marked difficult are kept as normal ones and counted.</summary>
public static class DotaConverter
{
    public static Conversion Convert(string source, string imagesRoot, string outputPath)
    {
        var builder = new CocoBuilder(imagesRoot);
        int difficult = 0;
        foreach (var image in ImageFolder.List(source))
        {
            var size = ImageHeader.Read(image);
            string? label = YoloConverter.LabelFor(image, "labelTxt");
            long id = builder.AddImage(image, size.Width, size.Height, label ?? image);
            if (label is not null) difficult += AddLabels(builder, id, label);
        }
        var names = builder.CategoryNames.Order(StringComparer.Ordinal).ToArray();
        return builder.Build(outputPath, names, difficult);
    }

    static int AddLabels(CocoBuilder builder, long imageId, string label)
    {
        int difficult = 0;
        var lines = File.ReadAllLines(label);
        var xy = new double[8];
        for (int n = 0; n < lines.Length; n++)
        {
            var fields = lines[n].Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length == 0 || (fields.Length == 1 && fields[0].Contains(':'))) continue; // imagesource:, gsd:
            string where = $"line {n + 1}";
            if (fields.Length is not (9 or 10))
                throw new BadInputException(label,
                    $"{where}: expected x1 y1 x2 y2 x3 y3 x4 y4 category [difficult], found {fields.Length} values");
            for (int k = 0; k < 8; k++)
                if (!double.TryParse(fields[k], NumberStyles.Float, CultureInfo.InvariantCulture, out xy[k])
                    || !double.IsFinite(xy[k]))
                    throw new BadInputException(label,
                        $"{where}: '{fields[k]}' is not a number; the first 8 values are the corners' pixel "
                        + "coordinates");
            if (fields.Length == 10 && fields[9] is not ("0" or "1"))
                throw new BadInputException(label, $"{where}: difficult must be 0 or 1, found '{fields[9]}'");
            if (fields.Length == 10 && fields[9] == "1") difficult++;
            builder.AddObject(imageId, fields[8], RotatedRectangle.MinimumAreaOf(xy));
        }
        return difficult;
    }
}
