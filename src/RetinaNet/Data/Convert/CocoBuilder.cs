using RetinaNet.Data.Coco;

namespace RetinaNet.Data.Converters;

/// <summary>What a conversion produced, with the counts its summary line reports.</summary>
public sealed record Conversion(CocoFile Coco, int ImagesWithoutObjects, int DifficultObjects);

/// <summary>Collects images and objects (by category name) and numbers them as COCO does: image and annotation ids
/// from 1 in insertion order, category ids 1..K in the order given to <see cref="Build"/>.</summary>
sealed class CocoBuilder(string imagesRoot)
{
    readonly List<CocoImageInfo> images = [];
    readonly List<(long ImageId, string Category, double X, double Y, double W, double H,
        Boxes.RotatedRectangle? Rotated)> objects = [];
    readonly Dictionary<string, string> describedBy = new(StringComparer.Ordinal);

    public IEnumerable<string> CategoryNames => objects.Select(o => o.Category).Distinct();

    /// <summary>Adds the image at <paramref name="imagePath"/>, named relative to the images root;
    /// <paramref name="source"/> (the annotation file describing it) is blamed if the image lies outside the root or
    /// is described twice.</summary>
    public long AddImage(string imagePath, int? width, int? height, string source)
    {
        string name = ImageFolder.RelativeName(imagesRoot, imagePath);
        if (name == ".." || name.StartsWith("../") || Path.IsPathRooted(name))
            throw new BadInputException(source,
                $"image {imagePath} is outside the images root {imagesRoot}; pass an --images-root that contains it");
        if (!describedBy.TryAdd(name, source))
            throw new BadInputException(source,
                $"image {name} is already described by {describedBy[name]}; keep one annotation file per image");
        images.Add(new CocoImageInfo(images.Count + 1, name, width, height));
        return images.Count;
    }

    public void AddObject(long imageId, string category, double x, double y, double w, double h)
        => objects.Add((imageId, category, x, y, w, h, null));

    /// <summary>A rotated box: bbox [x, y, w, h, theta] and its 4 corners as the segmentation.</summary>
    public void AddObject(long imageId, string category, Boxes.RotatedRectangle r)
        => objects.Add((imageId, category, r.X, r.Y, r.W, r.H, r));

    public Conversion Build(string outputPath, IReadOnlyList<string> categoriesInIdOrder, int difficult = 0)
    {
        var ids = categoriesInIdOrder.Select((name, i) => (name, id: (long)i + 1)).ToDictionary(p => p.name, p => p.id,
            StringComparer.Ordinal);
        var annotations = objects.Select((o, i) => new CocoAnnotation(i + 1, o.ImageId, ids[o.Category], o.X, o.Y, o.W,
            o.H, o.W * o.H, false,
            o.Rotated?.Theta, o.Rotated is { } r ? CocoSegmentation.OfPolygons(r.Corners()) : null)).ToArray();
        var categories = categoriesInIdOrder.Select((name, i) => new CocoCategory(i + 1, name)).ToArray();
        int negatives = images.Count - objects.Select(o => o.ImageId).Distinct().Count();
        return new Conversion(new CocoFile(outputPath, images, annotations, categories), negatives, difficult);
    }
}
