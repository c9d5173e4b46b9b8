using System.Text.Json;
using RetinaNet.Data.Coco;
using RetinaNet.Evaluation;

namespace RetinaNet.Tests.Evaluation;

/// <summary>A pycocotools-made fixture (Fixtures/cocoeval/NAME.json): ground truth, detections, and COCOeval's stats
/// and per-category AP on them, written out as files the way the CLI reads them.</summary>
sealed class EvalFixture
{
    public required string GroundTruthPath { get; init; }
    public required string DetectionsPath { get; init; }
    public required double[] Stats { get; init; }
    public required Dictionary<string, double> ApPerCategory { get; init; }
    /// <summary>Non-crowd gts per category id, counted straight from the fixture's JSON.</summary>
    public required Dictionary<long, int> NonCrowdGts { get; init; }

    public static readonly string[] Names =
    [
        "basic", "crowd", "area_field_and_ties", "empty_images_and_classes", "over_100_detections",
        "full_precision", "float64_boundaries",
    ];

    /// <summary>Rotated boxes evaluated as ODTK validates them: pycocotools' loadRes (bbox branch) and
    /// COCOeval(iouType='segm') on 4-corner polygons (Fixtures/cocoeval-segm, from ../shared/fixtures).</summary>
    public static readonly string[] SegmNames = ["rotated_basic", "rotated_crowd", "rotated_empty_images",
        "rotated_over_100_and_ties"];

    public static EvalFixture Load(string name, string folder = "cocoeval")
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Paths.Fixture(folder, name + ".json")));
        var root = doc.RootElement;
        var dir = Paths.TempDir();
        string gt = Path.Combine(dir, "gt.json"), dt = Path.Combine(dir, "detections.json");
        File.WriteAllText(gt, root.GetProperty("ground_truth").GetRawText());
        File.WriteAllText(dt, root.GetProperty("detections").GetRawText());
        var counts = new Dictionary<long, int>();
        foreach (var c in root.GetProperty("ground_truth").GetProperty("categories").EnumerateArray())
            counts[c.GetProperty("id").GetInt64()] = 0;
        foreach (var a in root.GetProperty("ground_truth").GetProperty("annotations").EnumerateArray())
            if (!(a.TryGetProperty("iscrowd", out var crowd) && crowd.GetInt32() != 0))
                counts[a.GetProperty("category_id").GetInt64()]++;
        return new EvalFixture
        {
            GroundTruthPath = gt, DetectionsPath = dt,
            Stats = root.GetProperty("stats").EnumerateArray().Select(x => x.GetDouble()).ToArray(),
            ApPerCategory = root.GetProperty("ap_per_category").EnumerateObject()
                .ToDictionary(p => p.Name, p => p.Value.GetDouble()),
            NonCrowdGts = counts,
        };
    }
}

/// <summary>Small ground truths built in code for the hand-computed cases.</summary>
static class HandGt
{
    public static CocoAnnotation Box(long id, long image, long category, double x, double y, double w, double h,
        double? area = null, bool crowd = false) =>
        new(id, image, category, x, y, w, h, area ?? w * h, crowd);

    public static CocoFile Of(IEnumerable<CocoAnnotation> annotations, long[]? images = null,
        long[]? categories = null) =>
        new("hand.json", (images ?? [1]).Select(i => new CocoImageInfo(i, $"{i}.jpg", 640, 480)).ToList(),
            annotations.ToList(), (categories ?? [1]).Select(c => new CocoCategory(c, $"class{c}")).ToList());

    public static CocoDetection Det(long image, long category, double x, double y, double w, double h, double score) =>
        new(image, category, x, y, w, h, score);
}
