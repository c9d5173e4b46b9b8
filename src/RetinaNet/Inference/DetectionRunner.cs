using RetinaNet.Boxes;
using RetinaNet.Data.Loading;
using RetinaNet.Model;
using RetinaNet.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Inference;

/// <summary>One image's detections in its original pixel coordinates: boxes as COCO [x, y, w, h]; a rotated model's
/// also carry their angles (ODTK's bbox [x, y, w, h, theta], <see cref="Boxes.RotatedRectangle"/>).</summary>
public sealed record ImageDetections(long ImageId, float[] Scores, float[] Boxes, int[] Classes, float[]? Angles = null)
{
    public int Count => Scores.Length;
}

/// <summary>The one TorchSharp inference path, used by <c>infer</c>, by training's validation and by the demo: batches
/// from the loader go to the device, through the model (under autocast unless full precision), decode and NMS for the
/// whole batch on the device, then one copy per batch to the host, where <see cref="DetectionMapping"/> maps boxes
/// back to original coordinates.</summary>
public sealed class DetectionRunner : IDetector
{
    readonly RetinaNetModel model;
    readonly Device device;
    readonly ScalarType? mixedPrecision;
    readonly AnchorGenerator anchors;
    // A model whose weights were converted (infer --precision) takes its inputs in that dtype and layout, no autocast;
    // a model shared with training (validation) keeps fp32 weights and runs under autocast.
    readonly ScalarType weights;
    readonly bool channelsLast;
    readonly DetectionGraphs? graphs;

    /// <param name="cudaGraphs">On a CUDA device, replay forward and decode as CUDA graphs (one per batch
    /// shape).</param>
    public DetectionRunner(RetinaNetModel model, Device device, ScalarType? mixedPrecision, bool cudaGraphs = false)
    {
        (this.model, this.device, this.mixedPrecision) = (model, device, mixedPrecision);
        anchors = new(model.Config.Anchors);
        weights = model.parameters().First().dtype;
        channelsLast = Layouts.IsChannelsLast(model.parameters().First(p => p.dim() == 4));
        // rotated NMS runs on the corners it makes from the candidates: not part of the captured graph
        if (cudaGraphs && device.type == DeviceType.CUDA && !model.Config.Rotated)
            graphs = new(Candidates, model.Config.Inference, device.index < 0 ? 0 : device.index, model.Kernels);
        model.eval();
    }

    public int Classes => model.Config.Classes;
    public (int Height, int Width)? InputSize => null;
    public InferenceConfig Settings => model.Config.Inference;
    public IReadOnlyList<Category> Categories => model.Config.Categories;
    public bool Rotated => model.Config.Rotated;

    public void Dispose() { graphs?.Dispose(); anchors.Dispose(); }

    public IReadOnlyList<ImageDetections> Detect(HostBatch host) =>
        host.Count == 0 ? [] : WithDetections(host, kept => ToDetections(kept, host));

    /// <summary>On a GPU: everything queued, the detections' copy to pinned host memory too, and an event after it;
    /// <see cref="PendingDetections.Collect"/> waits for that event only. Elsewhere (or without the driver's events)
    /// the detection runs whole here. Where the detection itself waits on the host (rotated NMS, the tensor-op NMS
    /// without our kernel) the batches still come out right, without the overlap.</summary>
    public PendingDetections Submit(HostBatch host)
    {
        if (host.Count == 0 || device.type != DeviceType.CUDA || !CudaEvent.Available)
            return PendingDetections.Ready(Detect(host));
        var (rows, shape) = WithDetections(host, kept => (
            DetectionMapping.Rows(kept.Scores, kept.Boxes, kept.Classes, kept.Count)
                .to(CPU, non_blocking: true).DetachFromDisposeScope(),
            DetectionMapping.RowShape.Of(kept.Scores, kept.Boxes)));
        CudaEvent copied;
        try
        {
            copied = CudaEvent.Record(device.index < 0 ? 0 : device.index);
        }
        catch
        {
            rows.Dispose();
            throw;
        }
        return new PendingDetections(() =>
        {
            copied.Synchronize();
            return DetectionMapping.FromRows(rows.data<double>().ToArray(), shape, host);
        }, new Owned(rows, copied));
    }

    /// <summary><paramref name="use"/> of the batch's kept detections, on the device.</summary>
    T WithDetections<T>(HostBatch host, Func<NmsResult, T> use)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var autocast = mixedPrecision is ScalarType dtype && weights == ScalarType.Float32
            ? Autocast.Enable(device.type, dtype) : null;
        var images = Images(host);
        using var kept = graphs?.Run(images) ?? Eager(images);
        return use(kept);
    }

    /// <summary>The batch as the model takes it: in its weights' dtype and layout; for a channels-last model on a GPU
    /// in one pass of <see cref="InputKernel"/> where it runs (the same values as
    /// <see cref="DeviceBatch.From"/>'s).</summary>
    Tensor Images(HostBatch host)
    {
        if (channelsLast && model.Kernels.InputKernel && !host.HasColor)
        {
            var pixels = host.Pixels.to(device, non_blocking: true);
            if (InputKernel.CanRun(pixels, weights)) return InputKernel.Run(pixels, host.Sizes, weights);
        }
        using var batch = DeviceBatch.From(host, device);
        return channelsLast ? Layouts.NhwcCopy(batch.Images.to(weights)) : batch.Images.to(weights);
    }

    sealed class Owned(Tensor rows, CudaEvent copied) : IDisposable
    {
        public void Dispose() { copied.Dispose(); rows.Dispose(); }
    }

    NmsResult Eager(Tensor images)
    {
        using var candidates = Candidates(images);
        return Postprocess.Suppress(candidates, model.Config.Inference, model.Kernels);
    }

    /// <summary>Forward and per-level decode: every step before NMS.</summary>
    Candidates Candidates(Tensor images)
    {
        using var heads = model.Forward(images, deferClassBias: model.Kernels.ClassBiasInCopy);
        var levels = anchors.For(images.shape[2], images.shape[3], heads);
        return Postprocess.Decode(heads, levels, model.Config.Classes, model.Config.Inference,
            (images.shape[3], images.shape[2]), model.Kernels);
    }

    /// <summary>Kept detections of a batch (one host transfer) → per image, original coordinates, padding
    /// dropped.</summary>
    public static IReadOnlyList<ImageDetections> ToDetections(NmsResult kept, HostBatch host) =>
        DetectionMapping.ToImages(kept.Scores, kept.Boxes, kept.Classes, kept.Count, host);
}

/// <summary>A batch's detections ([B, D] scores, [B, D, 4] boxes in the padded input's pixels — rotated: [B, D, 5]
/// with the angle —, [B, D] classes, optional [B] counts) to per-image detections in original coordinates: divided by
/// the resize ratio, clipped to the image (a rotated box is not: its corners are not its extent); score-0 padding rows
/// and entries that only padded the batch are dropped.</summary>
public static class DetectionMapping
{
    public static IReadOnlyList<ImageDetections> ToImages(Tensor scoresTensor, Tensor boxesTensor, Tensor classesTensor,
        Tensor? countsTensor, HostBatch host)
    {
        using var scope = NewDisposeScope();
        var rows = Rows(scoresTensor, boxesTensor, classesTensor, countsTensor).cpu().data<double>().ToArray();
        return FromRows(rows, RowShape.Of(scoresTensor, boxesTensor), host);
    }

    /// <summary>Batch size, detections per image and values per box of a batch's detections.</summary>
    public readonly record struct RowShape(long Batch, int Detections, int BoxValues)
    {
        public static RowShape Of(Tensor scores, Tensor boxes) =>
            new(scores.shape[0], (int)scores.shape[1], (int)boxes.shape[2]);
    }

    /// <summary>One transfer (one wait) per batch: [B, D*(1 + K + 1) + 1] float64 rows of scores, boxes, classes and
    /// the count, on the detections' device.</summary>
    public static Tensor Rows(Tensor scores, Tensor boxes, Tensor classes, Tensor? counts)
    {
        using var scope = NewDisposeScope();
        var (b, d, _) = RowShape.Of(scores, boxes);
        using var limit = ((double)d).ToScalar();
        var count = counts?.to(ScalarType.Float64).reshape(b, 1)
            ?? full(b, 1, limit, dtype: ScalarType.Float64, device: scores.device);
        return cat([scores.to(ScalarType.Float64), boxes.to(ScalarType.Float64).reshape(b, -1),
            classes.to(ScalarType.Float64), count], 1).MoveToOuterDisposeScope();
    }

    /// <summary><see cref="Rows"/> on the host → per image.</summary>
    public static IReadOnlyList<ImageDetections> FromRows(double[] rows, RowShape shape, HostBatch host)
    {
        var (b, d, k) = shape;
        int width = d * (k + 2) + 1;
        var scores = new float[b * d]; var boxes = new float[b * d * k]; var classes = new long[b * d];
        var counts = new long[b];
        for (int i = 0; i < b; i++)
        {
            var row = rows.AsSpan(i * width, width);
            for (int j = 0; j < d; j++)
            {
                scores[i * d + j] = (float)row[j]; classes[i * d + j] = (long)row[(k + 1) * d + j];
            }
            for (int j = 0; j < k * d; j++) boxes[i * d * k + j] = (float)row[d + j];
            counts[i] = (long)row[(k + 2) * d];
        }
        var result = new List<ImageDetections>(host.Count);
        for (int i = 0; i < host.Count; i++)
        {
            if (host.Padding[i]) continue;
            var s = scores.AsSpan(i * d, d);
            var bx = boxes.AsSpan(i * d * k, d * k);
            var c = classes.AsSpan(i * d, d);
            result.Add(k == 5 ? MapBackRotated(host.ImageIds[i], s, bx, c, (int)counts[i], host.Scales[i])
                : MapBack(host.ImageIds[i], s, bx, c, (int)counts[i], host.Scales[i], host.OriginalSizes[i]));
        }
        return result;
    }

    /// <summary>Boxes come from the decoder as inclusive pixel corners (see ImageScale.ToOriginal).</summary>
    static ImageDetections MapBack(long imageId, ReadOnlySpan<float> scores, ReadOnlySpan<float> boxes,
        ReadOnlySpan<long> classes, int count, double scale, (int Width, int Height) original)
    {
        var s = new List<float>(count); var b = new List<float>(count * 4); var c = new List<int>(count);
        for (int j = 0; j < count; j++)
        {
            if (scores[j] <= 0
                || OnnxRuntime.ImageScale.ToOriginal(boxes.Slice(4 * j, 4), scale, original) is not var (x, y, w, h))
                continue;
            s.Add(scores[j]); b.AddRange([x, y, w, h]); c.Add((int)classes[j]);
        }
        return new ImageDetections(imageId, [.. s], [.. b], [.. c]);
    }

    /// <summary>Rotated boxes [x1, y1, x2, y2, theta] (inclusive corners before turning) to ODTK's [x, y, w, h] and
    /// theta, the angle brought into [−π/4, π/4) (<see cref="RotatedRectangle.Normalized"/>).</summary>
    static ImageDetections MapBackRotated(long imageId, ReadOnlySpan<float> scores, ReadOnlySpan<float> boxes,
        ReadOnlySpan<long> classes, int count, double scale)
    {
        var s = new List<float>(count); var b = new List<float>(count * 4); var c = new List<int>(count);
        var a = new List<float>(count);
        for (int j = 0; j < count; j++)
        {
            var box = boxes.Slice(5 * j, 5);
            double w = (box[2] - box[0] + 1) / scale, h = (box[3] - box[1] + 1) / scale;
            if (scores[j] <= 0 || !(w > 0 && h > 0)) continue;
            var r = new RotatedRectangle(box[0] / scale, box[1] / scale, w, h, box[4]).Normalized();
            s.Add(scores[j]); b.AddRange([(float)r.X, (float)r.Y, (float)r.W, (float)r.H]); c.Add((int)classes[j]);
            a.Add((float)r.Theta);
        }
        return new ImageDetections(imageId, [.. s], [.. b], [.. c], [.. a]);
    }
}
