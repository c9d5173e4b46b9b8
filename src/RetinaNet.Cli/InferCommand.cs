using TorchSharp;
using RetinaNet.Checkpoints;
using RetinaNet.Data;
using RetinaNet.Inference.Onnx;
using RetinaNet.Data.Coco;
using RetinaNet.Evaluation;
using RetinaNet.Inference;
using RetinaNet.Model;

namespace RetinaNet.Cli;

sealed record InferenceCommandOptions(string ModelPath, string Images, string? Annotations, string[] Outputs, string Format, InferenceOptions Inference);

/// <summary><c>retinanet infer</c>: the images (those listed in --annotations, else every image under --images), the
/// shared inference path, detections written to every --output, and COCO evaluation when annotations are given.</summary>
static class InferCommand
{
    static readonly TimeSpan ProgressLineInterval = TimeSpan.FromSeconds(10);

    /// <summary>A checkpoint on the device, run with what <paramref name="settings"/> makes of its stored settings
    /// (options given win); with mixed precision its weights are converted (inference alone owns it).</summary>
    public static CheckpointDetector FromCheckpoint(string path, TorchSharp.torch.Device device,
        TorchSharp.torch.ScalarType? mixedPrecision, bool cudaGraphs, Func<InferenceConfig, InferenceConfig> settings)
    {
        var model = Checkpoint.Load(path).Model;
        try
        {
            model.UseInferenceSettings(settings(model.Config.Inference));
            model.to(device);
            model.PrepareForInference();
            if (mixedPrecision is TorchSharp.torch.ScalarType low)
            {
                // weights in bf16 and NHWC beat autocast (bench/RESULTS.md)
                model.to(low);
                Layouts.ToChannelsLast(model);
            }
            return new CheckpointDetector(model, new DetectionRunner(model, device, mixedPrecision, cudaGraphs));
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>An exported model through ONNX Runtime: on a GPU TensorRT (engine and timing caches in MODEL's folder,
    /// NAME.trt-cache/), then CUDA, then the CPU.</summary>
    public static IDetector FromExport(string path, ExportedDetector info, InferenceCommandOptions o,
        bool fullPrecision, TextWriter notes)
    {
        var execution = new OrtExecution
        {
            Gpu = o.Inference.Device.type == DeviceType.CUDA,
            DeviceId = Math.Max(0, (int)o.Inference.Device.index),
            Fp16 = !fullPrecision,
            Int8 = info.Precision == "int8",
            CacheDirectory = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, Path.GetFileNameWithoutExtension(path) + ".trt-cache"),
            BatchProfile = (1, o.Inference.Batch, o.Inference.Batch),
        };
        return OnnxDetector.Open(path, execution, notes);
    }

    /// <summary>A checkpoint's model and its runner, owned together; <see cref="Settings"/>: what this run
    /// uses.</summary>
    public sealed class CheckpointDetector(RetinaNetModel model, DetectionRunner runner) : IDetector
    {
        public InferenceConfig Settings => model.Config.Inference;
        public int Classes => runner.Classes;
        public (int Height, int Width)? InputSize => runner.InputSize;
        public IReadOnlyList<ImageDetections> Detect(Data.Loading.HostBatch host) => runner.Detect(host);
        public void Dispose() { runner.Dispose(); model.Dispose(); }
    }

    public static void Run(IDetector detector, InferenceCommandOptions o, TextWriter stdout, TextWriter stderr, Distributed.ProcessGroup? group = null)
    {
        var coco = o.Annotations is null ? null : CocoFile.Load(o.Annotations);
        var dataset = coco is null ? DetectionDataset.FromFolder(o.Images) : DetectionDataset.FromCoco(coco, o.Images, stderr, o.Inference.SkipBadImages);
        if (coco is not null && coco.Categories.Count > detector.Classes)
            throw new BadInputException(o.Annotations!, $"{coco.Categories.Count} categories but {o.ModelPath} predicts {detector.Classes} classes; use the annotations the model was trained on");
        string precision = detector is OnnxDetector ? "ONNX Runtime" : o.Inference.MixedPrecision?.ToString() ?? "fp32";
        int ranks = group?.WorldSize ?? 1;
        stdout.WriteLine($"Running inference on {dataset.Count} images with {o.ModelPath} ({o.Inference.Device.type}, {precision}, batch {o.Inference.Batch * ranks}" +
            (ranks > 1 ? $" × {ranks} processes" : "") +
            $", resize {o.Inference.Resize}, max size {o.Inference.MaxSize})");
        // progress on stderr, so stdout keeps only results: a bar on a terminal, else "[n/N] images" now and then
        bool terminal = !Console.IsErrorRedirected && ReferenceEquals(stderr, Console.Error);
        var bar = new Training.TrainingLog(stderr, terminal, TimeSpan.FromSeconds(0.5),
            plain: ("images", ProgressLineInterval));
        double seconds = 0;
        var detections = InferenceJob.Detect(detector, dataset, o.Inference, stderr, (done, total, s) => { seconds = s; bar.Progress(done, total, TimeSpan.FromSeconds(s)); }, group);
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
