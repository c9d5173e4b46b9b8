using TorchSharp;
using RetinaNet.Data;
using RetinaNet.Data.Coco;
using RetinaNet.Evaluation;
using RetinaNet.Inference;
using RetinaNet.Model;

namespace RetinaNet.Cli;

sealed record InferenceCommandOptions(string ModelPath, string Images, string? Annotations, string[] Outputs, string Format, InferenceOptions Inference);

/// <summary><c>retinanet infer</c>: the images (those listed in --annotations, else every image under --images), the
/// shared inference path, detections written to every --output, and COCO evaluation when annotations are given.
/// In a multi-process job every rank detects its shard and rank 0 alone writes and evaluates all detections.</summary>
static class InferCommand
{
    public static void Run(RetinaNetModel model, InferenceCommandOptions o, TextWriter stdout, TextWriter stderr, Distributed.ProcessGroup? group = null)
    {
        var coco = o.Annotations is null ? null : CocoFile.Load(o.Annotations);
        var dataset = coco is null ? DetectionDataset.FromFolder(o.Images) : DetectionDataset.FromCoco(coco, o.Images, stderr, o.Inference.SkipBadImages);
        if (coco is not null && coco.Categories.Count > model.Config.Classes)
            throw new BadInputException(o.Annotations!, $"{coco.Categories.Count} categories but {o.ModelPath} predicts {model.Config.Classes} classes; use the annotations the model was trained on");
        model.to(o.Inference.Device);
        if (o.Inference.MixedPrecision is TorchSharp.torch.ScalarType low)
        {
            // inference alone owns this model: weights in bf16 and NHWC beat autocast (bench/RESULTS.md)
            model.to(low);
            Layouts.ToChannelsLast(model);
        }
        int ranks = group?.WorldSize ?? 1;
        stdout.WriteLine($"Running inference on {dataset.Count} images with {o.ModelPath} ({o.Inference.Device.type}, {(o.Inference.MixedPrecision?.ToString() ?? "fp32")}, batch {o.Inference.Batch * ranks}" +
            (ranks > 1 ? $" × {ranks} processes)" : ")"));
        var bar = new Training.TrainingLog(stdout, !Console.IsOutputRedirected && ReferenceEquals(stdout, Console.Out), TimeSpan.FromSeconds(0.5));
        double seconds = 0;
        var detections = InferenceJob.Detect(model, dataset, o.Inference, stderr, (done, total, s) => { seconds = s; bar.Progress(done, total, TimeSpan.FromSeconds(s)); }, group);
        bar.Finish();
        if (!(group?.IsMaster ?? true)) return;
        stdout.WriteLine($"{dataset.Count} images in {seconds:F1} s: {dataset.Count / Math.Max(seconds, 1e-9):F1} im/s, {detections.Count} detections");
        var images = coco ?? new CocoFile(o.Images, dataset.Images, [], []);
        foreach (var output in o.Outputs)
        {
            if (o.Format == "coco-results") DetectionsFile.WriteCocoResults(output, detections);
            else DetectionsFile.WriteOdtk(output, detections, images);
            stdout.WriteLine($"Wrote {output}");
        }
        if (coco is null) return;
        var result = CocoEvaluator.Evaluate(coco, detections);
        stdout.Write(result.SummaryText());
        stdout.Write(result.PerCategoryTable());
    }
}
