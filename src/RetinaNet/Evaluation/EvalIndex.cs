using RetinaNet.Data.Coco;

namespace RetinaNet.Evaluation;

/// <summary>Ground truth and detections laid out for evaluation: images and categories in sorted id order (COCOeval's
/// <c>sorted(getImgIds())</c>, <c>sorted(getCatIds())</c>), and per category the objects grouped by image. Detections
/// within an image are in score order, ties kept in input order (COCOeval's <c>argsort(-score, kind='mergesort')</c>
/// over the file's order).</summary>
sealed class EvalIndex
{
    public readonly long[] ImageIds;
    public readonly CocoCategory[] Categories;
    public readonly CocoAnnotation[] Gts;
    public readonly CocoDetection[] Dets;
    /// <summary>Image index (into <see cref="ImageIds"/>) of each gt / detection.</summary>
    public readonly int[] GtImage, DetImage;
    /// <summary>Category k's gts are GtOrder[GtStart[k] .. GtStart[k + 1]), by image, then file order.</summary>
    public readonly int[] GtStart, GtOrder;
    /// <summary>Category k's detections are DetOrder[DetStart[k] .. DetStart[k + 1]), by image, then score
    /// (stable).</summary>
    public readonly int[] DetStart, DetOrder;

    public readonly IouType IouType;
    readonly CocoFile groundTruth;
    readonly Dictionary<long, CocoImageInfo> images;

    public int CategoryCount => Categories.Length;

    public EvalIndex(CocoFile groundTruth, IReadOnlyList<CocoDetection> detections, IouType iouType)
    {
        (this.groundTruth, IouType) = (groundTruth, iouType);
        images = new Dictionary<long, CocoImageInfo>(groundTruth.Images.Count);
        foreach (var image in groundTruth.Images) images[image.Id] = image;
        ImageIds = new long[groundTruth.Images.Count];
        for (int i = 0; i < ImageIds.Length; i++) ImageIds[i] = groundTruth.Images[i].Id;
        Array.Sort(ImageIds);
        var imageIndex = new Dictionary<long, int>(ImageIds.Length);
        for (int i = 0; i < ImageIds.Length; i++) imageIndex[ImageIds[i]] = i;
        Categories = [.. groundTruth.Categories];
        Array.Sort(Categories, (a, b) => a.Id.CompareTo(b.Id));
        var categoryIndex = new Dictionary<long, int>(Categories.Length);
        for (int k = 0; k < Categories.Length; k++) categoryIndex[Categories[k].Id] = k;

        Gts = [.. groundTruth.Annotations];
        GtImage = new int[Gts.Length];
        var gtCategory = new int[Gts.Length];
        for (int i = 0; i < Gts.Length; i++)
        {
            GtImage[i] = imageIndex[Gts[i].ImageId];
            gtCategory[i] = categoryIndex[Gts[i].CategoryId];
        }
        (GtStart, GtOrder) = GroupByCategory(gtCategory, Categories.Length);

        Dets = detections as CocoDetection[] ?? [.. detections];
        DetImage = new int[Dets.Length];
        var detCategory = new int[Dets.Length];
        for (int i = 0; i < Dets.Length; i++)
        {
            var d = Dets[i];
            // loadRes asserts that result image ids are a subset of the ground truth's.
            if (!imageIndex.TryGetValue(d.ImageId, out DetImage[i]))
                throw new ArgumentException($"detection {i} refers to image id {d.ImageId}, which is not in the ground "
                    + "truth");
            if (!double.IsFinite(d.Score))
                throw new ArgumentException($"detection {i} has a non-finite score {d.Score}");
            // COCOeval only looks at detections of the ground truth's categories; others are left out.
            detCategory[i] = categoryIndex.TryGetValue(d.CategoryId, out int k) ? k : -1;
        }
        (DetStart, DetOrder) = GroupByCategory(detCategory, Categories.Length);
        if (iouType == IouType.Segm) CheckRegions();

        Parallel.For(0, Categories.Length, k =>
        {
            SortByImage(GtOrder, GtStart[k], GtStart[k + 1], i => new SortKey(GtImage[i], 0, i));
            SortByImage(DetOrder, DetStart[k], DetStart[k + 1],
                i => new SortKey(DetImage[i], DescendingKey(Dets[i].Score), i));
        });
    }

    /// <summary>Height and width of image index i, which segm evaluation rasterises at.</summary>
    public (int Height, int Width) ImageSize(int i)
    {
        var image = images[ImageIds[i]];
        if (image.Height is int h && image.Width is int w) return (h, w);
        throw new Data.BadInputException(groundTruth.Path,
            $"image id {image.Id} has no width and height; segm evaluation rasterises regions at the image's size, so "
            + "give both");
    }

    /// <summary>Segm evaluation's inputs, checked before any work: a region for every object, regions of a shape
    /// that rasterises, and the size of every image with objects or detections.</summary>
    void CheckRegions()
    {
        foreach (var gt in Gts)
        {
            if (gt.Segmentation is null)
                throw new Data.BadInputException(groundTruth.Path,
                    $"annotation {gt.Id} has no \"segmentation\"; segm evaluation needs a polygon or RLE for every "
                    + "object (rotated boxes: their 4 corners)");
            if (MaskRle.ShapeProblem(gt.Segmentation) is string problem)
                throw new Data.BadInputException(groundTruth.Path, $"annotation {gt.Id}'s segmentation: {problem}");
        }
        for (int i = 0; i < Dets.Length; i++)
            if (Dets[i].Segmentation is { } s && MaskRle.ShapeProblem(s) is string problem)
                throw new ArgumentException($"detection {i}'s segmentation: {problem}");
        foreach (int image in GtImage.Concat(DetImage).Distinct()) ImageSize(image);
    }

    public MaskRle GtMask(int i, int height, int width) => MaskRle.Of(Gts[i].Segmentation!, height, width);

    /// <summary>loadRes' bbox branch: the detection's polygon if it has one, else its box's corners.</summary>
    public MaskRle DetMask(int i, int height, int width)
    {
        var d = Dets[i];
        return d.Segmentation is null
            ? MaskRle.FromPolygon([d.X, d.Y, d.X, d.Y + d.H, d.X + d.W, d.Y + d.H, d.X + d.W, d.Y], height, width)
            : MaskRle.Of(d.Segmentation, height, width);
    }

    /// <summary>Stable counting sort of item indices by category; items with category -1 are dropped.</summary>
    static (int[] Start, int[] Order) GroupByCategory(int[] category, int categories)
    {
        var start = new int[categories + 1];
        foreach (int k in category) if (k >= 0) start[k + 1]++;
        for (int k = 0; k < categories; k++) start[k + 1] += start[k];
        var order = new int[start[categories]];
        var next = (int[])start.Clone();
        for (int i = 0; i < category.Length; i++) if (category[i] >= 0) order[next[category[i]]++] = i;
        return (start, order);
    }

    static void SortByImage(int[] order, int from, int to, Func<int, SortKey> key)
    {
        if (to - from < 2) return;
        var keys = new SortKey[to - from];
        for (int j = 0; j < keys.Length; j++) keys[j] = key(order[from + j]);
        Array.Sort(keys);
        for (int j = 0; j < keys.Length; j++) order[from + j] = keys[j].Item;
    }

    /// <summary>A key that sorts higher scores first (equal scores compare equal, as -score does in numpy); all 64
    /// bits of the double count, so scores that differ only beyond float32 keep their order.</summary>
    public static ulong DescendingKey(double score)
    {
        if (score == 0) score = 0; // -0 and +0 are one score
        ulong bits = BitConverter.DoubleToUInt64Bits(score);
        const ulong Sign = 1UL << 63;
        ulong ascending = (bits & Sign) != 0 ? ~bits : bits | Sign;
        return ~ascending;
    }

    /// <summary>(image, score key, item): the item index last makes the unstable Array.Sort stable.</summary>
    public readonly record struct SortKey(int Image, ulong Score, int Item) : IComparable<SortKey>
    {
        public int CompareTo(SortKey o) =>
            Image != o.Image ? Image.CompareTo(o.Image) : Score != o.Score ? Score.CompareTo(o.Score)
                : Item.CompareTo(o.Item);
    }
}
