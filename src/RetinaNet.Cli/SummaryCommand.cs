using System.Diagnostics;
using RetinaNet.Boxes;
using RetinaNet.Checkpoints;
using RetinaNet.Inference;
using RetinaNet.Model;
using TorchSharp;
using static TorchSharp.torch;
using static RetinaNet.Cli.Validation;

namespace RetinaNet.Cli;

/// <summary><c>retinanet summary</c>: a model's structure and one timed run on a synthetic image.</summary>
static class SummaryCommand
{
    public static int Run(ParsedArgs a, TextWriter stdout)
    {
        var device = DeviceChoice.Resolve(a.String("--device"));
        var size = a.Ints("--size");
        foreach (var s in size) MultipleOf("--size", s, Fpn.Stride);
        RetinaNetModel model;
        if (a.String("--model") is string path)
        {
            ExistingFile("--model", path, ModelFiles.CheckpointExtensions);
            model = Checkpoint.Load(path).Model;
        }
        else
        {
            torch.manual_seed(0);
            model = new RetinaNetModel(new DetectorConfig { Backbones = Backbones(a), Classes = Positive(a, "--classes"), Inference = InferenceSettings(a) });
            model.Initialize();
        }
        using var _ = model;
        model.to(device).eval();
        var config = model.Config;
        stdout.WriteLine($"RetinaNet: backbones {string.Join(" + ", config.Backbones)}, {config.Classes} classes, {config.Anchors.Count} anchors per location, device {device.type}");
        stdout.WriteLine($"  anchor ratios {string.Join(' ', config.Anchors.Ratios.Select(r => r.ToString("0.###")))}, scales {string.Join(' ', config.Anchors.Scales.Select(s => s.ToString("0.###")))}");
        stdout.WriteLine($"  inference: score >= {config.Inference.ScoreThreshold}, top {config.Inference.TopN} per level, NMS {config.Inference.NmsThreshold}, {config.Inference.Detections} detections");
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

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var image = rand(1, 3, size[0], size[^1], generator: new Generator(0)).to(device);
        var watch = Stopwatch.StartNew();
        using var heads = model.forward(image);
        using var anchors = new AnchorGenerator(config.Anchors);
        var levels = anchors.For(size[0], size[^1], heads);
        using var detections = Postprocess.Detect(heads, levels, config.Classes, config.Inference, (size[^1], size[0]));
        long kept = detections.Count.cpu().item<long>();
        watch.Stop();
        stdout.WriteLine($"  input [1, 3, {size[0]}, {size[^1]}] -> levels {string.Join(", ", heads.ClassLogits.Select((l, i) => $"P{i + 3} {l.shape[2]}x{l.shape[3]}"))}; {levels.Total:N0} anchors");
        stdout.WriteLine($"  forward + decode + NMS: {watch.Elapsed.TotalMilliseconds:F0} ms, {kept} detections kept (synthetic noise image)");
        return CommandLine.Ok;
    }

    static string PartOf(string key)
    {
        var parts = key.Split('.');
        return parts[0] == "backbones" ? $"{parts[1]} {(parts[2] == "features" ? "body" : "FPN")}" : parts[0];
    }
}
