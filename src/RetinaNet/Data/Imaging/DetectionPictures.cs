using RetinaNet.Data.Coco;
using RetinaNet.Evaluation;

namespace RetinaNet.Data.Imaging;

/// <summary>Pictures of detections: each image with its detections (a colour per class, "name score" labels) and,
/// when given, its ground truth in green, written under an output folder with the image's relative name as PNG.
/// Used by <c>retinanet draw</c> and the demo.</summary>
public static class DetectionPictures
{
    public static readonly (byte R, byte G, byte B) GroundTruthColor = (0, 230, 0);

    static readonly (byte, byte, byte)[] Palette =
        [(255, 215, 0), (255, 64, 160), (0, 200, 255), (255, 128, 0), (170, 90, 255), (255, 40, 40), (0, 255, 190), (200, 255, 60)];

    public static (byte R, byte G, byte B) ColorOf(int categoryIndex) => Palette[categoryIndex % Palette.Length];

    /// <summary>Draws onto <paramref name="image"/> in place.</summary>
    public static void Draw(RgbImage image, IEnumerable<CocoDetection> detections, IEnumerable<CocoAnnotation> groundTruth, CategoryMap categories, double minScore)
    {
        foreach (var g in groundTruth)
            Drawing.DrawBox(image, (float)g.X, (float)g.Y, (float)(g.X + g.W), (float)(g.Y + g.H), GroundTruthColor, 1);
        foreach (var d in detections.Where(d => d.Score >= minScore).OrderBy(d => d.Score)) // best drawn last, on top
        {
            int c = categories.Count > 0 && categories.CategoryIds.Contains(d.CategoryId) ? categories.ClassIndexOf(d.CategoryId) : (int)d.CategoryId;
            string name = categories.Count > 0 && c < categories.Count ? categories.Names[c] : d.CategoryId.ToString();
            Drawing.DrawBox(image, (float)d.X, (float)d.Y, (float)(d.X + d.W), (float)(d.Y + d.H), ColorOf(c));
            Drawing.DrawLabel(image, (float)d.X, (float)d.Y, $"{name} {d.Score:0.00}", ColorOf(c));
        }
    }

    /// <summary>Every image of <paramref name="images"/> that has detections or ground truth, drawn and saved as
    /// OUT/relative-name.png; returns how many were written.</summary>
    public static int WriteAll(CocoFile images, string imagesDir, IReadOnlyList<CocoDetection> detections, CocoFile? groundTruth, string outDir, double minScore)
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
