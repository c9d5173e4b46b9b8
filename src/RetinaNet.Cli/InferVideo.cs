using System.Text;
using System.Text.Json;
using RetinaNet.Core;
using static RetinaNet.Cli.SharedOptions;
using static RetinaNet.Cli.Validation;

namespace RetinaNet.Cli;

/// <summary><c>retinanet infer MODEL --video SOURCE</c>: <see cref="VideoDetection"/> with the public
/// <see cref="Detector"/>; one JSON line per frame (<c>{"frame", "time", "detections": [{"category_id", "name",
/// "score", "bbox"}]}</c>) to each --output (a file written whole at the end, or - for stdout as frames come). The
/// saved video draws detections from --score-threshold when given, else from 0.3.</summary>
static class InferVideo
{
    public const string DefaultOutput = "detections.jsonl";

    public static int Run(InferArguments a, string source, CommandContext context, string model)
    {
        foreach (var (option, given) in new (Option, bool)[]
        {
            (Images, a.GivenImages is not null), (InferCommand.Annotations, a.Annotations is not null),
            (WithDali, a.WithDali), (InferCommand.CudaGraphs, a.CudaGraphs), (Gpus, a.Launch.Gpus is not null),
        })
            if (given) throw new UsageException($"{option.Name} does not go with {InferCommand.Video.Name}");
        Unsupported($"video draws axis-aligned boxes only; for a rotated model, give the frames as {Images.Name}",
            (RotatedBbox, a.RotatedBbox));
        var outputs = a.GivenOutput?.ToArray() ?? [DefaultOutput];
        foreach (var output in outputs.Where(o => o != "-"))
        {
            Extension(InferCommand.Output.Name, output, ".jsonl", ".json");
            WritableParent(InferCommand.Output.Name, output);
        }
        if (a.SaveVideo is string save)
        {
            Extension(InferCommand.SaveVideo.Name, save, ".mp4", ".mkv", ".mov");
            WritableParent(InferCommand.SaveVideo.Name, save);
        }
        int batch = Positive(Batch, a.Batch);
        Positive(Resize, a.Resize); Positive(MaxSize, a.MaxSize);
        InferenceSettings(a.Given);
        if (VideoDetection.Missing() is string missing) throw new UsageException(missing);

        using var detector = Detector.Load(model, DetectorArgs.From(a.Launch.Device, a.FullPrecision, a.Given, batch));
        var lines = new StringBuilder();
        bool toStdout = outputs.Contains("-");
        long frames = VideoDetection.RunAsync(detector, source, frame =>
        {
            string line = Line(frame);
            if (outputs.Any(o => o != "-")) lines.AppendLine(line);
            if (toStdout) context.Stdout.WriteLine(line);
        }, a.SaveVideo, minScore: a.Given.ScoreThreshold ?? 0.3,
            batch: batch).GetAwaiter().GetResult();
        foreach (var output in outputs.Where(o => o != "-"))
            AtomicFile.Write(output, stream => stream.Write(Encoding.UTF8.GetBytes(lines.ToString())));
        var wrote = outputs.Where(o => o != "-").Concat(a.SaveVideo is string v ? [v] : []).ToArray();
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
