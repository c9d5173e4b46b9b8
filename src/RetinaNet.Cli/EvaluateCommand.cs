using System.Globalization;
using System.Text.Json;
using RetinaNet.Data.Coco;
using RetinaNet.Evaluation;
using static RetinaNet.Cli.Validation;

namespace RetinaNet.Cli;

/// <summary><c>retinanet evaluate</c> (ours): COCO bbox evaluation of a detections file, printed as pycocotools prints
/// it.</summary>
static class EvaluateCommand
{
    public static CommandSpec Spec()
        => new("evaluate", "(ours) COCO evaluation (pycocotools' COCOeval) of a detections file.",
        [],
        [
            new("--annotations", Arity.One, "path to COCO style annotations (the ground truth)", "path",
                Required: true),
            new("--detections", Arity.One, "detections: ODTK's infer output or a COCO results list", "path",
                Required: true),
            new("--iou-type", Arity.One,
                "(ours) bbox, or segm: regions (polygons, RLE) compared as masks, how rotated boxes are evaluated",
                "bbox|segm", Default: ["bbox"]),
            new("--metrics-json", Arity.One, "(ours) also write the metrics to this JSON file", "path"),
            new("--pr-curves", Arity.One, "(ours) plot precision against recall per category (IoU 0.5) to this PNG",
                "path"),
        ]);

    public static int Run(ParsedArgs a, TextWriter stdout)
    {
        string annotations = a.String("--annotations")!, detectionsPath = a.String("--detections")!;
        ExistingFile("--annotations", annotations, ".json");
        ExistingFile("--detections", detectionsPath, ".json");
        var iouType = a.String("--iou-type") switch
        {
            "bbox" => IouType.Bbox,
            "segm" => IouType.Segm,
            var other => throw new UsageException($"--iou-type: expected bbox or segm, got {other}"),
        };
        string? metrics = a.String("--metrics-json");
        if (metrics is not null) WritableParent("--metrics-json", metrics);
        if (a.String("--pr-curves") is string curves) { Extension("--pr-curves", curves, ".png");
            WritableParent("--pr-curves", curves); }

        var groundTruth = CocoFile.Load(annotations);
        var detections = DetectionsFile.Read(detectionsPath);
        DetectionsFile.Validate(detections, groundTruth, detectionsPath);
        var result = CocoEvaluator.Evaluate(groundTruth, detections, iouType);
        stdout.Write(result.SummaryText());
        stdout.WriteLine();
        stdout.Write(result.PerCategoryTable());
        if (metrics is not null) WriteMetrics(metrics, result);
        if (a.String("--pr-curves") is string plot)
        {
            Data.Imaging.ImageEncoder.SavePng(PrCurvePlot.Render(result), plot);
            stdout.WriteLine($"Wrote {plot}");
        }
        return CommandLine.Ok;
    }

    /// <summary>{"stats": [...], "stats_names": [...], "per_category": {"id": {"name", "ap", "ap50", "gt"}}}, written
    /// atomically.</summary>
    static void WriteMetrics(string path, CocoEvalResult result)
    {
        var temp = path + ".tmp";
        using (var stream = File.Create(temp))
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteStartArray("stats");
            foreach (double s in result.Stats) w.WriteNumberValue(s);
            w.WriteEndArray();
            w.WriteStartArray("stats_names");
            foreach (string s in CocoEvalResult.StatNames) w.WriteStringValue(s);
            w.WriteEndArray();
            w.WriteStartObject("per_category");
            foreach (var c in result.PerCategory)
            {
                w.WriteStartObject(c.CategoryId.ToString(CultureInfo.InvariantCulture));
                w.WriteString("name", c.Name); w.WriteNumber("ap", c.Ap);
                w.WriteNumber("ap50", c.Ap50); w.WriteNumber("gt", c.GtCount);
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteEndObject();
        }
        File.Move(temp, path, overwrite: true);
    }
}
