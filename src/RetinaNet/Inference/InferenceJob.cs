using RetinaNet.Core;
using System.Diagnostics;
using RetinaNet.Data;
using RetinaNet.Data.Coco;
using RetinaNet.Data.Loading;
using RetinaNet.Data.Transforms;
using RetinaNet.Distributed;
using RetinaNet.Evaluation;
using RetinaNet.Model;
using static TorchSharp.torch;

namespace RetinaNet.Inference;

/// <summary>What <c>retinanet infer</c> does: <see cref="Images"/> (those listed in <see cref="Annotations"/>, else
/// every image under the folder) through a model, detections written to every output in <see cref="Format"/> (odtk or
/// coco-results), COCO evaluation when annotations are given.</summary>
public sealed record InferenceJobOptions(string ModelPath, string Images, string? Annotations,
    IReadOnlyList<string> Outputs,
    string Format, InferenceOptions Inference);

/// <summary>How to run a model over a dataset.</summary>
public sealed record InferenceOptions(Device Device, int Batch, int Resize = 800, int MaxSize = 1333,
    ScalarType? MixedPrecision = null,
    int Workers = 0, int Prefetch = 3, bool SkipBadImages = false, bool GpuDecode = false, bool CudaGraphs = false)
{
    /// <summary>What a new input shape costs the detector, in padded input pixels, when batches are planned
    /// (<see cref="ShapeBatches"/>); null: <see cref="InferenceJob.NewShapePixelsOnCuda"/> on a GPU, 0 (no cost) on the
    /// CPU.</summary>
    public long? NewShapePixels { get; init; }

    /// <summary>Batches submitted to the detector before the oldest one's results are awaited
    /// (<see cref="DetectorExtensions.Run"/>); 2 keeps a GPU busy while the host maps results and takes the next
    /// batch. 1 (the default: 2 measured no faster on an H200, whose host already keeps up; bench/NOTES.md): one
    /// batch at a time.</summary>
    public int BatchesInFlight { get; init; } = 1;
}

/// <summary>Detections for every image of a dataset, in COCO terms (original coordinates, category ids): what
/// <c>infer</c> writes and what validation scores. One pass in order through the same loader and runner. In a
/// multi-process job each rank takes its shard (images r, r + W, ...; the shard's padding repeats are dropped by the
/// runner) and rank 0 receives everything, in dataset order; the other ranks get an empty list.</summary>
public static class InferenceJob
{
    static readonly TimeSpan ProgressLineInterval = TimeSpan.FromSeconds(10);

    /// <summary>A new input shape's first batch on a GPU costs about as long as this many more padded pixels of input
    /// (ResNet50FPN at batch 8 on an H200: bench/RESULTS.md, "new input shapes").</summary>
    public const long NewShapePixelsOnCuda = 32_000_000;

    /// <summary>The output name that means JSON Lines on stdout, one image a line.</summary>
    public const string StandardOutput = "-";

    /// <summary>The infer job with an open detector. Progress goes to <paramref name="stderr"/>, so stdout keeps only
    /// results: a bar on a terminal, else "[n/N] images" now and then. In a multi-process job only rank 0
    /// writes.</summary>
    public static void Run(IDetector detector, InferenceJobOptions o, TextWriter stdout, TextWriter stderr,
        ProcessGroup? group = null)
    {
        var coco = o.Annotations is null ? null : CocoFile.Load(o.Annotations);
        var dataset = coco is null ? ImageInputs.Resolve(o.Images)
            : DetectionDataset.FromCoco(coco, o.Images, stderr, o.Inference.SkipBadImages);
        // with results on stdout (--output -), everything else goes to stderr
        var results = stdout;
        if (o.Outputs.Contains(StandardOutput)) stdout = stderr;
        if (coco is not null && coco.Categories.Count > detector.Classes)
            throw new BadInputException(o.Annotations!,
                $"{coco.Categories.Count} categories but {o.ModelPath} predicts "
                + $"{detector.Classes} classes; use the annotations the model was trained on");
        string precision = detector is Onnx.OnnxDetector ? "ONNX Runtime" : o.Inference.MixedPrecision?.ToString()
            ?? "fp32";
        int ranks = group?.WorldSize ?? 1;
        stdout.WriteLine($"Running inference on {dataset.Count} images with {o.ModelPath} ({o.Inference.Device.type}, "
            + $"{precision}, batch {o.Inference.Batch * ranks}" + (ranks > 1 ? $" × {ranks} processes" : "")
            + $", resize {o.Inference.Resize}, max size {o.Inference.MaxSize})");
        bool terminal = !Console.IsErrorRedirected && ReferenceEquals(stderr, Console.Error);
        var bar = new ProgressLog(stderr, terminal, TimeSpan.FromSeconds(0.5), plain: ("images", ProgressLineInterval));
        double seconds = 0;
        var detections = Detect(detector, dataset, o.Inference, stderr,
            (done, total, s) => { seconds = s; bar.Progress(done, total, TimeSpan.FromSeconds(s)); }, group);
        bar.Finish();
        if (!(group?.IsMaster ?? true)) return;
        stdout.WriteLine($"{dataset.Count} images in {seconds:F1} s: {dataset.Count / Math.Max(seconds, 1e-9):F1} "
            + "im/s, "
            + $"{detections.Count} detections");
        var categories = detector.Categories.Select(c => new CocoCategory(c.Id, c.Name)).ToList();
        var images = coco ?? new CocoFile(o.Images, dataset.Images, [], categories);
        foreach (var output in o.Outputs)
        {
            if (output == StandardOutput) { DetectionsFile.WriteJsonLines(results, detections, images); continue; }
            if (o.Format == "coco-results") DetectionsFile.WriteCocoResults(output, detections);
            else DetectionsFile.WriteOdtk(output, detections, images);
            stdout.WriteLine($"Wrote {output}");
        }
        if (coco is null) return;
        var result = CocoEvaluator.Evaluate(coco, detections, detector.Rotated ? IouType.Segm : IouType.Bbox);
        stdout.Write(result.SummaryText());
        stdout.Write(result.PerCategoryTable());
    }

    /// <summary>An inference loader's options: one pass, no augmentation, pinned batches for a GPU, and the canvas of
    /// a model with a fixed input size.</summary>
    public static LoaderOptions LoaderOptionsFor(Device device, int workers, (int Height, int Width)? canvas) =>
        new(workers, Prefetch: 3, Seed: 0, SkipBadImages: false, Pin: device.type == TorchSharp.DeviceType.CUDA)
        {
            Canvas = canvas,
        };

    /// <summary>The loader of one pass over this rank's shard, sized and resized for <paramref name="runner"/>, its
    /// batches grouped by shape unless the runner takes one fixed input size (results come out of dataset
    /// order).</summary>
    public static PrefetchingLoader OnePassLoader(IDetector runner, DetectionDataset dataset, InferenceOptions o,
        TextWriter warnings, ProcessGroup? group = null)
    {
        var sampler = new ShardedSampler(dataset.Count, group?.Rank ?? 0, group?.WorldSize ?? 1, shuffle: false);
        var loaderOptions = LoaderOptionsFor(o.Device, o.Workers, runner.InputSize) with
        {
            Prefetch = o.Prefetch, SkipBadImages = o.SkipBadImages, DecodeDevice = o.GpuDecode ? o.Device : null,
            WorkerCudaDevice = group is not null && o.Device.type == TorchSharp.DeviceType.CUDA && o.Device.index >= 0
                ? o.Device.index : null,
        };
        var transform = Augmentation.ForInference(o.Resize, o.MaxSize, runner.InputSize);
        // a fixed input size pads every batch alike; otherwise batches group images of one shape
        var plan = runner.InputSize is not null ? DetectionLoader.OnePass(sampler, o.Batch)
            : DetectionLoader.OnePassByShape(sampler, o.Batch,
                i => DetectionLoader.PaddedShape(dataset[i], o.Resize, o.MaxSize, loaderOptions.Stride),
                o.NewShapePixels ?? (o.Device.type == TorchSharp.DeviceType.CUDA ? NewShapePixelsOnCuda : 0));
        return DetectionLoader.Create(dataset, transform, plan, loaderOptions, warnings);
    }

    /// <param name="progress">(images done, images, seconds); in a multi-process job rank 0 counts for all.</param>
    public static List<CocoDetection> Detect(RetinaNetModel model, DetectionDataset dataset, InferenceOptions o,
        TextWriter warnings,
        Action<int, int, double>? progress = null, ProcessGroup? group = null)
    {
        using var runner = new DetectionRunner(model, o.Device, o.MixedPrecision, o.CudaGraphs);
        return Detect(runner, dataset, o, warnings, progress, group);
    }

    /// <summary>Any detector; one with a fixed input size gets images resized to fit it and batches padded to
    /// it.</summary>
    public static List<CocoDetection> Detect(IDetector runner, DetectionDataset dataset, InferenceOptions o,
        TextWriter warnings,
        Action<int, int, double>? progress = null, ProcessGroup? group = null)
    {
        using var loader = OnePassLoader(runner, dataset, o, warnings, group);
        var results = new List<CocoDetection>();
        int done = 0;
        var clock = Stopwatch.StartNew();
        foreach (var image in runner.Run(loader, o.BatchesInFlight))
        {
            for (int j = 0; j < image.Count; j++)
            {
                int c = image.Classes[j];
                // the annotation file's ids, else the model's categories, else the class index
                long category = dataset.Categories.Count > 0 ? dataset.Categories.CategoryIdOf(c)
                    : c < runner.Categories.Count ? runner.Categories[c].Id : c;
                results.Add(CocoDetections.Of(image, j, category));
            }
            group?.Tick();
            done++;
            if (group?.IsMaster ?? true) progress?.Invoke(Math.Min(done * (group?.WorldSize ?? 1), dataset.Count),
                dataset.Count, clock.Elapsed.TotalSeconds);
        }
        var order = new Dictionary<long, int>();
        for (int i = 0; i < dataset.Count; i++) order.TryAdd(dataset[i].ImageId, i);
        // batches ran grouped by shape: the results go back to dataset order
        if (group is null) return [.. results.OrderBy(r => order[r.ImageId])];
        return DetectionGather.ToRank0(group, results, id => order[id]);
    }
}
