using System.Text;
using System.Text.Json;
using RetinaNet.Core;
using static RetinaNet.Cli.Validation;

namespace RetinaNet.Cli;

/// <summary><c>retinanet infer MODEL --video SOURCE</c>: <see cref="VideoDetection"/> with the public
/// <see cref="Detector"/>; one JSON line per frame (<c>{"frame", "time", "detections": [{"category_id", "name",
/// "score", "bbox"}]}</c>) to each --output (a file written whole at the end, or - for stdout as frames come). The
/// saved video draws detections from --score-threshold when given, else from 0.3.</summary>
static class InferVideo
{
    public const string DefaultOutput = "detections.jsonl";

    public static int Run(ParsedArgs a, CommandContext context, string model)
    {
        foreach (var option in new[] { "--images", "--annotations", "--with-dali", "--cuda-graphs", "--gpus" })
            if (a.Has(option)) throw new UsageException($"{option} does not go with --video");
        Unsupported(a, "video draws axis-aligned boxes only; for a rotated model, give the frames as --images",
            "--rotated-bbox");
        string source = a.String("--video")!;
        var outputs = a.Has("--output") ? a.Strings("--output").ToArray() : [DefaultOutput];
        foreach (var output in outputs.Where(o => o != "-"))
        {
            Extension("--output", output, ".jsonl", ".json");
            WritableParent("--output", output);
        }
        if (a.String("--save-video") is string save)
        {
            Extension("--save-video", save, ".mp4", ".mkv", ".mov");
            WritableParent("--save-video", save);
        }
        int batch = Positive(a, "--batch");
        Positive(a, "--resize"); Positive(a, "--max-size");
        InferenceSettings(a);
        if (VideoDetection.Missing() is string missing) throw new UsageException(missing);

        using var detector = Detector.Load(model, DetectorArgs.From(a, batch));
        var lines = new StringBuilder();
        bool toStdout = outputs.Contains("-");
        long frames = VideoDetection.RunAsync(detector, source, frame =>
        {
            string line = Line(frame);
            if (outputs.Any(o => o != "-")) lines.AppendLine(line);
            if (toStdout) context.Stdout.WriteLine(line);
        }, a.String("--save-video"), minScore: a.GivenDouble("--score-threshold") ?? 0.3,
            batch: batch).GetAwaiter().GetResult();
        foreach (var output in outputs.Where(o => o != "-"))
            AtomicFile.Write(output, stream => stream.Write(Encoding.UTF8.GetBytes(lines.ToString())));
        var wrote = outputs.Where(o => o != "-").Concat(a.String("--save-video") is string v ? [v] : []).ToArray();
        context.Stderr.WriteLine($"{frames} frames of {source}"
            + (wrote.Length > 0 ? $"; wrote {string.Join(", ", wrote)}" : ""));
        return CommandLine.Ok;
    }

    static string Line(FrameResult frame)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("frame", frame.Frame);
            w.WriteNumber("time", Math.Round(frame.Seconds, 6));
            w.WriteStartArray("detections");
            foreach (var d in frame.Detections)
            {
                w.WriteStartObject();
                w.WriteNumber("category_id", d.CategoryId);
                w.WriteString("name", d.Name);
                w.WriteNumber("score", d.Score);
                w.WriteStartArray("bbox");
                w.WriteNumberValue(d.X); w.WriteNumberValue(d.Y);
                w.WriteNumberValue(d.Width); w.WriteNumberValue(d.Height);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }
}
