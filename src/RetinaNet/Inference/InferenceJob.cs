using System.Diagnostics;
using RetinaNet.Data;
using RetinaNet.Data.Loading;
using RetinaNet.Data.Transforms;
using RetinaNet.Distributed;
using RetinaNet.Evaluation;
using RetinaNet.Model;
using static TorchSharp.torch;

namespace RetinaNet.Inference;

/// <summary>How to run a model over a dataset.</summary>
public sealed record InferenceOptions(Device Device, int Batch, int Resize = 800, int MaxSize = 1333, ScalarType? MixedPrecision = null,
    int Workers = 0, int Prefetch = 3, bool SkipBadImages = false, bool GpuDecode = false, bool CudaGraphs = false);

/// <summary>Detections for every image of a dataset, in COCO terms (original coordinates, category ids): what
/// <c>infer</c> writes and what validation scores. One pass in order through the same loader and runner. In a
/// multi-process job each rank takes its shard (images r, r + W, ...; the shard's padding repeats are dropped by the
/// runner) and rank 0 receives everything, in dataset order; the other ranks get an empty list.</summary>
public static class InferenceJob
{
    /// <param name="progress">(images done, images, seconds); in a multi-process job rank 0 counts for all.</param>
    public static List<CocoDetection> Detect(RetinaNetModel model, DetectionDataset dataset, InferenceOptions o, TextWriter warnings,
        Action<int, int, double>? progress = null, ProcessGroup? group = null)
    {
        using var runner = new DetectionRunner(model, o.Device, o.MixedPrecision, o.CudaGraphs);
        return Detect(runner, dataset, o, warnings, progress, group);
    }

    /// <summary>Any detector; one with a fixed input size gets images resized to fit it and batches padded to it.</summary>
    public static List<CocoDetection> Detect(IDetector runner, DetectionDataset dataset, InferenceOptions o, TextWriter warnings,
        Action<int, int, double>? progress = null, ProcessGroup? group = null)
    {
        var sampler = new ShardedSampler(dataset.Count, group?.Rank ?? 0, group?.WorldSize ?? 1, shuffle: false);
        var loaderOptions = new LoaderOptions(o.Workers, o.Prefetch, 0, o.SkipBadImages, Pin: o.Device.type == TorchSharp.DeviceType.CUDA)
        {
            DecodeDevice = o.GpuDecode ? o.Device : null,
            Canvas = runner.InputSize,
            WorkerCudaDevice = group is not null && o.Device.type == TorchSharp.DeviceType.CUDA && o.Device.index >= 0 ? o.Device.index : null,
        };
        var transform = Augmentation.ForInference(o.Resize, o.MaxSize, runner.InputSize);
        using var loader = DetectionLoader.Create(dataset, transform, DetectionLoader.OnePass(sampler, o.Batch), loaderOptions, warnings);
        var results = new List<CocoDetection>();
        int done = 0;
        var clock = Stopwatch.StartNew();
        foreach (var image in runner.Run(loader))
        {
            for (int j = 0; j < image.Count; j++)
            {
                int c = image.Classes[j];
                long category = dataset.Categories.Count > 0 ? dataset.Categories.CategoryIdOf(c) : c;
                results.Add(new CocoDetection(image.ImageId, category, image.Boxes[4 * j], image.Boxes[4 * j + 1], image.Boxes[4 * j + 2], image.Boxes[4 * j + 3], image.Scores[j]));
            }
            group?.Tick();
            done++;
            if (group?.IsMaster ?? true) progress?.Invoke(Math.Min(done * (group?.WorldSize ?? 1), dataset.Count), dataset.Count, clock.Elapsed.TotalSeconds);
        }
        if (group is null) return results;
        var order = new Dictionary<long, int>();
        for (int i = 0; i < dataset.Count; i++) order.TryAdd(dataset[i].ImageId, i);
        return DetectionGather.ToRank0(group, results, id => order[id]);
    }
}
