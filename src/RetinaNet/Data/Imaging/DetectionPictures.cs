using System.Globalization;
using RetinaNet.Data.Coco;
using RetinaNet.Evaluation;

namespace RetinaNet.Data.Imaging;

/// <summary>Pictures of detections: each image with its detections (a colour per class, "name score" labels) and,
/// when given, its ground truth in green, written under an output folder with the image's relative name as PNG.
/// Used by <c>retinanet draw</c>; the demo draws a <see cref="ContactSheet"/>.</summary>
public static class DetectionPictures
{
    public static readonly (byte R, byte G, byte B) GroundTruthColor = (0, 230, 0);

    static readonly (byte, byte, byte)[] Palette =
        [(255, 215, 0), (255, 64, 160), (0, 200, 255), (255, 128, 0), (170, 90, 255), (255, 40, 40), (0, 255, 190),
            (200, 255, 60)];

    public static (byte R, byte G, byte B) ColorOf(int categoryIndex) =>
        Palette[(categoryIndex % Palette.Length + Palette.Length) % Palette.Length];

    /// <summary>A detection's class index (its colour) and name: by its COCO category id when
    /// <paramref name="categories"/> has it, else the id taken as a class index (a model's own numbering).</summary>
    public static (int Index, string Name) ClassOf(CategoryMap categories, long categoryId)
    {
        int c = categories.CategoryIds.Contains(categoryId) ? categories.ClassIndexOf(categoryId)
            : unchecked((int)categoryId);
        string name = c >= 0 && c < categories.Count ? categories.Names[c]
            : categoryId.ToString(CultureInfo.InvariantCulture);
        return (c, name);
    }

    /// <summary>A detection's label: class name and score to two decimals.</summary>
    public static string LabelOf(string name, double score) =>
        string.Create(CultureInfo.InvariantCulture, $"{name} {score:0.00}");

    /// <summary>Draws onto <paramref name="image"/> in place; labels in the embedded font
    /// (<see cref="Drawing.DrawLabel"/>).</summary>
    public static void Draw(RgbImage image, IEnumerable<CocoDetection> detections,
        IEnumerable<CocoAnnotation> groundTruth, CategoryMap categories, double minScore)
    {
        foreach (var g in groundTruth) Outline(image, g.X, g.Y, g.W, g.H, g.Theta, GroundTruthColor, 1);
        foreach (var d in detections.Where(d => d.Score >= minScore).OrderBy(d => d.Score)) // best drawn last, on top
        {
            var (c, name) = ClassOf(categories, d.CategoryId);
            var (x, y) = Outline(image, d.X, d.Y, d.W, d.H, d.Theta, ColorOf(c), 2);
            Drawing.DrawLabel(image, (float)x, (float)y, LabelOf(name, d.Score), ColorOf(c));
        }
    }

    /// <summary>A box, or a rotated box's 4 corners; returns where its label goes (the top-left of what is
    /// drawn).</summary>
    static (double X, double Y) Outline(RgbImage image, double x, double y, double w, double h, double? theta,
        (byte R, byte G, byte B) color, int thickness)
    {
        if (theta is not double t)
        {
            Drawing.DrawBox(image, (float)x, (float)y, (float)(x + w), (float)(y + h), color, thickness);
            return (x, y);
        }
        var corners = new Boxes.RotatedRectangle(x, y, w, h, t).Corners();
        Drawing.DrawPolygon(image, corners, color, thickness);
        return (Enumerable.Range(0, 4).Min(i => corners[2 * i]), Enumerable.Range(0, 4).Min(i => corners[2 * i + 1]));
    }

    /// <summary>Every image of <paramref name="images"/> that has detections or ground truth, drawn and saved as
    /// OUT/relative-name.png; returns how many were written.</summary>
    public static int WriteAll(CocoFile images, string imagesDir, IReadOnlyList<CocoDetection> detections,
        CocoFile? groundTruth, string outDir, double minScore)
    {
        var byImage = detections.ToLookup(d => d.ImageId);
        var gtByImage = (groundTruth?.Annotations ?? []).ToLookup(a => a.ImageId);
        var categories = new CategoryMap(groundTruth?.Categories ?? images.Categories);
        int written = 0;
        foreach (var info in images.Images)
        {
            if (!byImage[info.Id].Any() && !gtByImage[info.Id].Any()) continue;
            var image = ImageDecoder.Decode(Path.Combine(imagesDir, info.FileName));
            Draw(image, byImage[info.Id], gtByImage[info.Id], categories, minScore);
            var target = Path.Combine(outDir, Path.ChangeExtension(info.FileName, ".png"));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            ImageEncoder.SavePng(image, target);
            written++;
        }
        return written;
    }
}
