using System.Diagnostics;
using RetinaNet.Data.Loading;
using RetinaNet.Data.Transforms;
using RetinaNet.Checkpoints;
using RetinaNet.Inference;
using RetinaNet.Model;
using TorchSharp;
using static TorchSharp.torch;
using static RetinaNet.Cli.SharedOptions;
using static RetinaNet.Cli.Validation;

namespace RetinaNet.Cli;

/// <summary>summary's command line, read once.</summary>
sealed record SummaryArguments(string? Model, IReadOnlyList<string> Backbone, int Classes, int[] Size, string? Device,
    InferenceOverrides Given);

/// <summary><c>retinanet summary</c>: a model's structure and one timed run on a synthetic image.</summary>
static class SummaryCommand
{
    static readonly Option<string?> Model = Option.OptionalString("--model",
        "a checkpoint to describe instead of a fresh model", "path");
    static readonly Option<int> Classes = Option.Int("--classes", "number of classes", "num", 80);
    static readonly Option<int[]> Size = Option.Ints("--size", Arity.Two,
        "synthetic input height and width (multiples of 128)", "height width", 512, 640);

    public static CommandSpec Spec() => new("summary",
        "(ours) Build a detector, print its structure and run it once on a synthetic image.",
        [],
        [Model, Backbone.WithDefault(["ResNet18FPN"]), Classes, Size, .. Postprocessing(), SharedOptions.Device]);

    static SummaryArguments Bind(ParsedArgs a)
        => new(a.Get(Model), a.Get(Backbone), a.Get(Classes), a.Get(Size), a.Get(SharedOptions.Device),
            PostprocessingGiven(a));

    public static int Run(ParsedArgs parsed, TextWriter stdout)
    {
        var a = Bind(parsed);
        var device = DeviceChoice.Resolve(a.Device);
        var size = a.Size;
        foreach (var s in size) MultipleOf(Size.Name, s, Fpn.Stride);
        RetinaNetModel model;
        if (a.Model is string path)
        {
            ExistingFile(Model.Name, path, ModelFiles.CheckpointExtensions);
            model = Checkpoint.Load(path).Model;
        }
        else
        {
            model = new RetinaNetModel(new DetectorConfig { Backbones = Backbones(a.Backbone),
                Classes = Positive(Classes, a.Classes), Inference = InferenceSettings(a.Given) });
            model.Initialize(0);
        }
        using var _ = model;
        model.to(device).eval();
        var config = model.Config;
        stdout.WriteLine($"RetinaNet: backbones {string.Join(" + ", config.Backbones)}, {config.Classes} classes, "
            + $"{config.Anchors.Count} anchors per location, device {device.type}");
        stdout.WriteLine($"  anchor ratios {string.Join(' ', config.Anchors.Ratios.Select(r => r.ToString("0.###")))}, "
            + $"scales {string.Join(' ', config.Anchors.Scales.Select(s => s.ToString("0.###")))}");
        stdout.WriteLine($"  inference: score >= {config.Inference.ScoreThreshold}, top {config.Inference.TopN} per "
            + $"level, NMS {config.Inference.NmsThreshold}, {config.Inference.Detections} detections");
        stdout.WriteLine($"  input: resize {config.Inference.Resize}, max size {config.Inference.MaxSize}");
        stdout.WriteLine($"  {"part",-36} {"parameters",12}");
        long total = 0;
        foreach (var group in StateDict.Of(model).GroupBy(kv => PartOf(kv.Key)))
        {
            long count = group.Where(kv => kv.Value.is_floating_point()).Sum(kv => kv.Value.numel());
            total += count;
            stdout.WriteLine($"  {group.Key,-36} {count,12:N0}");
        }
        stdout.WriteLine($"  {"total (incl. frozen BN buffers)",-36} {total,12:N0}");

        // timed through the same runner as infer: a synthetic noise image, its original size the input size
        using var scope = NewDisposeScope();
        using var runner = new DetectionRunner(model, device, mixedPrecision: null);
        var noise = randint(0, 256, [3, size[0], size[^1]], generator: new Generator(0)).to(ScalarType.Byte);
        using var image = new PreparedImage(0, 0, new ImageWithBoxes(noise, [], []), size[^1], size[0]);
        using var batch = HostBatch.Collate([image], [false], Fpn.Stride, pin: false);
        var watch = Stopwatch.StartNew();
        int kept = runner.Detect(batch)[0].Count;
        watch.Stop();
        var levels = Enumerable.Range(3, 5).Select(l => (Level: l, H: size[0] >> l, W: size[^1] >> l)).ToList();
        long anchors = levels.Sum(l => (long)l.H * l.W) * config.Anchors.Count * config.Backbones.Count;
        stdout.WriteLine($"  input [1, 3, {size[0]}, {size[^1]}] -> levels "
            + $"{string.Join(", ", levels.Select(l => $"P{l.Level} {l.H}x{l.W}"))}; {anchors:N0} anchors");
        stdout.WriteLine($"  forward + decode + NMS: {watch.Elapsed.TotalMilliseconds:F0} ms, {kept} detections kept "
            + "(synthetic noise image)");
        return CommandLine.Ok;
    }

    static string PartOf(string key)
    {
        var parts = key.Split('.');
        return parts[0] == "backbones" ? $"{parts[1]} {(parts[2] == "features" ? "body" : "FPN")}" : parts[0];
    }
}
