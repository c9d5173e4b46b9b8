using System.Globalization;
using System.Text.Json;
using RetinaNet.Data.Coco;
using RetinaNet.Evaluation;
using static RetinaNet.Cli.Validation;

namespace RetinaNet.Cli;

/// <summary>evaluate's command line, read once.</summary>
sealed record EvaluateArguments(string Annotations, string Detections, string IouType, string? MetricsJson,
    string? PrCurves);

/// <summary><c>retinanet evaluate</c> (ours): COCO bbox evaluation of a detections file, printed as pycocotools prints
/// it.</summary>
static class EvaluateCommand
{
    static readonly Option<string> Annotations = Option.Required("--annotations",
        "path to COCO style annotations (the ground truth)", "path");
    static readonly Option<string> Detections = Option.Required("--detections",
        "detections: ODTK's infer output or a COCO results list", "path");
    static readonly Option<string> IouTypeOption = Option.String("--iou-type",
        "(ours) bbox, or segm: regions (polygons, RLE) compared as masks, how rotated boxes are evaluated",
        "bbox|segm", "bbox");
    static readonly Option<string?> MetricsJson = Option.OptionalString("--metrics-json",
        "(ours) also write the metrics to this JSON file", "path");
    static readonly Option<string?> PrCurves = Option.OptionalString("--pr-curves",
        "(ours) plot precision against recall per category (IoU 0.5) to this PNG", "path");

    public static CommandSpec Spec() => new("evaluate",
        "(ours) COCO evaluation (pycocotools' COCOeval) of a detections file.",
        [],
        [Annotations, Detections, IouTypeOption, MetricsJson, PrCurves]);

    static EvaluateArguments Bind(ParsedArgs a)
        => new(a.Get(Annotations), a.Get(Detections), a.Get(IouTypeOption), a.Get(MetricsJson), a.Get(PrCurves));

    public static int Run(ParsedArgs parsed, TextWriter stdout)
    {
        var a = Bind(parsed);
        string annotations = a.Annotations, detectionsPath = a.Detections;
        ExistingFile(Annotations.Name, annotations, ".json");
        ExistingFile(Detections.Name, detectionsPath, ".json");
        var iouType = a.IouType switch
        {
            "bbox" => IouType.Bbox,
            "segm" => IouType.Segm,
            var other => throw new UsageException($"{IouTypeOption.Name}: expected bbox or segm, got {other}"),
        };
        string? metrics = a.MetricsJson;
        if (metrics is not null) WritableParent(MetricsJson.Name, metrics);
        if (a.PrCurves is string curves) { Extension(PrCurves.Name, curves, ".png");
            WritableParent(PrCurves.Name, curves); }

        var groundTruth = CocoFile.Load(annotations);
        var detections = DetectionsFile.Read(detectionsPath);
        DetectionsFile.Validate(detections, groundTruth, detectionsPath);
        var result = CocoEvaluator.Evaluate(groundTruth, detections, iouType);
        stdout.Write(result.SummaryText());
        stdout.WriteLine();
        stdout.Write(result.PerCategoryTable());
        if (metrics is not null) WriteMetrics(metrics, result);
        if (a.PrCurves is string plot)
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
