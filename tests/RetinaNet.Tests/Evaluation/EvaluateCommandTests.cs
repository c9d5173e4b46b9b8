using System.Text.Json;
using RetinaNet.Cli;
using Xunit;

namespace RetinaNet.Tests.Evaluation;

public class EvaluateCommandTests
{
    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter(); var e = new StringWriter();
        int code = CommandLine.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    // pycocotools' summarize() output on Fixtures/cocoeval/basic.json, printed by Python from the fixture's stats.
    static readonly string[] BasicSummary =
    [
        " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.152",
        " Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = 0.232",
        " Average Precision  (AP) @[ IoU=0.75      | area=   all | maxDets=100 ] = 0.165",
        " Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = 0.280",
        " Average Precision  (AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = 0.176",
        " Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = 0.144",
        " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 0.129",
        " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets= 10 ] = 0.493",
        " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.515",
        " Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = 0.534",
        " Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = 0.526",
        " Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = 0.465",
    ];

    [Fact]
    public void SegmIouTypeEvaluatesRotatedBoxesAsPycocotoolsSegmDoes()
    {
        var fixture = EvalFixture.Load("rotated_basic", "cocoeval-segm");
        var metrics = Path.Combine(Path.GetDirectoryName(fixture.DetectionsPath)!, "metrics.json");
        var (code, _, stderr) = Run("evaluate", "--annotations", fixture.GroundTruthPath,
            "--detections", fixture.DetectionsPath, "--iou-type", "segm", "--metrics-json", metrics);
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(File.ReadAllText(metrics));
        var stats = doc.RootElement.GetProperty("stats").EnumerateArray().Select(x => x.GetDouble()).ToArray();
        for (int i = 0; i < 12; i++) Assertions.Close(fixture.Stats[i], stats[i], 1e-9, $"stats[{i}]");

        // the same files as boxes give other numbers (the polygons turn; the boxes are their unrotated x, y, w, h)
        var (boxCode, boxOut, _) = Run("evaluate", "--annotations", fixture.GroundTruthPath,
            "--detections", fixture.DetectionsPath);
        Assert.Equal(0, boxCode);
        Assert.DoesNotContain($"= {fixture.Stats[0]:0.000}", boxOut.Split('\n')[0]);

        var (badCode, _, badErr) = Run("evaluate", "--annotations", fixture.GroundTruthPath,
            "--detections", fixture.DetectionsPath, "--iou-type", "mask");
        Assert.Equal(2, badCode);
        Assert.Contains("--iou-type: expected bbox or segm, got mask", badErr);
    }

    [Fact]
    public void SegmNeedsRegionsAndImageSizes()
    {
        var dir = Paths.TempDir();
        string gt = Path.Combine(dir, "gt.json"), dt = Path.Combine(dir, "dt.json");
        File.WriteAllText(dt, """[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.9}]""");
        File.WriteAllText(gt, """{"images": [{"id": 1, "file_name": "a.png", "width": 9, "height": 9}], "categories": [{"id": 1}], "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]}]}""");
        var (code, _, err) = Run("evaluate", "--annotations", gt, "--detections", dt, "--iou-type", "segm");
        Assert.NotEqual(0, code);
        Assert.Contains("annotation 7 has no \"segmentation\"", err);
        File.WriteAllText(gt, """{"images": [{"id": 1, "file_name": "a.png"}], "categories": [{"id": 1}], "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "segmentation": [[0, 0, 0, 5, 5, 5, 5, 0]]}]}""");
        (code, _, err) = Run("evaluate", "--annotations", gt, "--detections", dt, "--iou-type", "segm");
        Assert.NotEqual(0, code);
        Assert.Contains("image id 1 has no width and height", err);
        Assert.Single(err.Trim().Split('\n'));
    }

    [Fact]
    public void PrintsPycocotoolsSummaryAndWritesMetricsJson()
    {
        var fixture = EvalFixture.Load("basic");
        var metrics = Path.Combine(Path.GetDirectoryName(fixture.DetectionsPath)!, "metrics.json");
        var (code, stdout, stderr) = Run("evaluate", "--annotations", fixture.GroundTruthPath,
            "--detections", fixture.DetectionsPath, "--metrics-json", metrics);

        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n');
        Assert.Equal(BasicSummary, lines[..12]);
        // Per-category table after a blank line: header, then one row per category with AP, AP50 and #gt.
        Assert.Equal("", lines[12]);
        Assert.StartsWith("category", lines[13]);
        Assert.Equal(["class1", "0.167"], lines[14].Split(' ', StringSplitOptions.RemoveEmptyEntries)[..2]);

        using var doc = JsonDocument.Parse(File.ReadAllText(metrics));
        var stats = doc.RootElement.GetProperty("stats").EnumerateArray().Select(x => x.GetDouble()).ToArray();
        for (int i = 0; i < 12; i++) Assertions.Close(fixture.Stats[i], stats[i], 1e-6, $"stats[{i}]");
        Assert.Equal(["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"],
            doc.RootElement.GetProperty("stats_names").EnumerateArray().Select(x => x.GetString()));
        var perCategory = doc.RootElement.GetProperty("per_category");
        foreach (var (id, ap) in fixture.ApPerCategory)
        {
            var c = perCategory.GetProperty(id);
            Assertions.Close(ap, c.GetProperty("ap").GetDouble(), 1e-6, $"category {id}");
            Assert.Equal($"class{id}", c.GetProperty("name").GetString());
            Assert.Equal(fixture.NonCrowdGts[long.Parse(id)], c.GetProperty("gt").GetInt32());
        }
        Assert.False(File.Exists(metrics + ".tmp"));
    }

    [Fact]
    public void BadInputsExitWithOneLine()
    {
        var fixture = EvalFixture.Load("basic");
        var dir = Path.GetDirectoryName(fixture.DetectionsPath)!;
        var unknown = Path.Combine(dir, "unknown.json");
        File.WriteAllText(unknown, """[{"image_id": 424242, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}]""");
        var (code, _, stderr) = Run("evaluate", "--annotations", fixture.GroundTruthPath, "--detections", unknown);
        Assert.Equal(CommandLine.Failed, code);
        Assert.StartsWith(
            $"retinanet evaluate: error: {unknown}: 1 detection(s) refer to images not in the ground truth", stderr);
        Assert.Single(stderr.TrimEnd('\n').Split('\n'));

        (code, _, stderr) = Run("evaluate", "--annotations", fixture.GroundTruthPath);
        Assert.Equal(CommandLine.BadUsage, code);
        Assert.Contains("--detections is required", stderr);
    }
}
