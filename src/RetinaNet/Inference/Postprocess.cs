using TorchSharp;
using RetinaNet.Boxes;
using RetinaNet.Model;
using RetinaNet.Native;
using static TorchSharp.torch;

namespace RetinaNet.Inference;

/// <summary>Candidates of all levels for a batch: [B, K] scores, [B, K, 4] boxes (inclusive corners; rotated:
/// [B, K, 5], the corners before turning and the angle), [B, K] classes, [B, K] valid.</summary>
public sealed record Candidates(Tensor Scores, Tensor Boxes, Tensor Classes, Tensor Valid) : IDisposable
{
    public void Dispose() { Scores.Dispose(); Boxes.Dispose(); Classes.Dispose(); Valid.Dispose(); }
}

/// <summary>From head outputs to detections, for the whole batch on the device: per level the top-n class
/// scores (ODTK's decode: score &gt;= threshold, at most top-n per level and image), their boxes decoded
/// against their anchors, then one batched class-aware NMS over all levels. <c>kernels</c> (null:
/// <see cref="KernelOptions.Default"/>) says whether our top-k and NMS kernels run.</summary>
public static class Postprocess
{
    public static Candidates Decode(HeadOutputs heads, LevelAnchors anchors, int classes, InferenceConfig config,
        (long W, long H) inputSize, KernelOptions? kernels = null)
    {
        using var scope = NewDisposeScope();
        var scores = new List<Tensor>(); var boxes = new List<Tensor>(); var labels = new List<Tensor>();
        var valid = new List<Tensor>();
        bool rotated = anchors.CornersPerLevel is not null;
        int values = rotated ? 6 : 4; // box head outputs per anchor
        using Scalar threshold = config.ScoreThreshold.ToScalar(), classCount = classes.ToScalar();
        for (int level = 0; level < heads.ClassLogits.Length; level++)
        {
            var cls = heads.ClassLogits[level];
            long batch = cls.shape[0], h = cls.shape[2], w = cls.shape[3], hw = h * w;
            // top-n on the logits (sigmoid is monotonic): only the n winners per image get a sigmoid, in fp32;
            // channels-last logits copied to NCHW by our kernel, the box values read where they lie
            bool inPlace = (kernels ?? KernelOptions.Default).ChannelsLastDecode && NchwCopyKernel.CanRun(cls)
                && Layouts.IsDenseNhwc(heads.BoxDeltas[level]);
            // a deferred class bias is added here, by the copy or as the head would have added it
            var logits = (inPlace ? NchwCopyKernel.Run(cls, heads.ClassBias)
                : heads.ClassBias is { } bias ? cls.Plus(bias.view(1, -1, 1, 1)) : cls)
                .reshape(batch, -1); // ((a*C + c)*H + y)*W + x
            int k = (int)Math.Min(config.TopN, logits.shape[1]);
            var (topLogits, index) = TopK(logits, k, kernels);
            var top = topLogits.to(ScalarType.Float32).sigmoid();
            using Scalar area = hw.ToScalar(), perAnchor = (classes * hw).ToScalar();
            var anchorIndex = index.div(perAnchor, rounding_mode: RoundingMode.floor);
            var classIndex = index.div(area, rounding_mode: RoundingMode.floor).remainder(classCount);
            var pixel = index.remainder(area);
            var deltas = BoxDeltas(heads.BoxDeltas[level], anchorIndex, pixel, values, inPlace);
            var anchorBoxes = anchors.PerLevel[level].index_select(0, (anchorIndex * area).Plus(pixel).flatten())
                .view(batch, k, 4);
            var limit = (inputSize.W, inputSize.H);
            boxes.Add(rotated ? RotatedBoxes.Decode(deltas, anchorBoxes, limit)
                : BoxCoder.Decode(deltas, anchorBoxes, limit));
            scores.Add(top);
            labels.Add(classIndex);
            valid.Add(top >= threshold);
        }
        var result = new Candidates(cat(scores, 1), cat(boxes, 1), cat(labels, 1), cat(valid, 1));
        foreach (var t in new[] { result.Scores, result.Boxes, result.Classes, result.Valid })
            t.MoveToOuterDisposeScope();
        return result;
    }

    /// <summary>The box head's values [B, K, values] at the candidates' anchors and pixels: box channel a·values + j
    /// at pixel p lies at (a·values + j)·HW + p, or channels-last (<paramref name="inPlace"/>) at
    /// p·A·values + a·values + j, gathered there without a copy of the whole level.</summary>
    static Tensor BoxDeltas(Tensor boxes, Tensor anchorIndex, Tensor pixel, int values, bool inPlace)
    {
        long batch = boxes.shape[0], channels = boxes.shape[1], hw = boxes.shape[2] * boxes.shape[3];
        long k = anchorIndex.shape[1];
        using Scalar valueCount = values.ToScalar(), area = hw.ToScalar(), perPixel = channels.ToScalar();
        using var offsets = Arange(values, ScalarType.Int64, boxes.device);
        if (inPlace)
        {
            using var first = (pixel * perPixel).Plus(anchorIndex * valueCount).unsqueeze(-1);
            using var at = first.Plus(offsets).reshape(batch, -1);
            using var memory = boxes.permute(0, 2, 3, 1).reshape(batch, -1);
            return memory.gather(1, at).view(batch, k, values);
        }
        using var start = (anchorIndex * valueCount * area).Plus(pixel).unsqueeze(-1);
        using var index = start.Plus(offsets * area).reshape(batch, -1);
        using var flat = boxes.reshape(batch, -1);
        return flat.gather(1, index).view(batch, k, values);
    }

    /// <summary>The k largest values per row of <paramref name="x"/> [B, N] and their indices, in descending order
    /// (on a GPU by our radix-select kernel where it compiles, <see cref="TopKKernel"/>; its values come as float32).
    /// A long row (P3's A·C·H·W logits: 11 M at 800×1216 with 80 classes) is a single slow selection on the GPU, so
    /// it is cut into chunks (past <see cref="KernelOptions.ChunkedTopKLength"/>) searched in parallel; the k best of
    /// the chunks' k best are the row's k best.</summary>
    public static (Tensor Values, Tensor Indices) TopK(Tensor x, int k, KernelOptions? kernels = null)
    {
        kernels ??= KernelOptions.Default;
        if (kernels.TopK && TopKKernel.CanRun(x)) return TopKKernel.Run(x, k);
        long batch = x.shape[0], n = x.shape[1];
        long chunks = Math.Min(n / kernels.ChunkedTopKLength * 2, 64);
        while (chunks > 1 && n % chunks != 0) chunks--; // equal chunks: a view, no copy
        if (chunks < 2 || n / chunks < k) return x.topk(k, dim: 1);
        using var scope = NewDisposeScope();
        long length = n / chunks;
        var (values, local) = x.view(batch, chunks, length).topk(k, dim: 2);
        using var stride = length.ToScalar();
        var global = local.Plus(Arange(chunks, ScalarType.Int64, x.device).view(1, chunks, 1) * stride)
            .view(batch, -1);
        var (top, at) = values.view(batch, -1).topk(k, dim: 1);
        return (top.MoveToOuterDisposeScope(), global.gather(1, at).MoveToOuterDisposeScope());
    }

    /// <summary>Decode + NMS: detections [B, D] padded with score 0.</summary>
    public static NmsResult Detect(HeadOutputs heads, LevelAnchors anchors, int classes, InferenceConfig config,
        (long W, long H) inputSize, KernelOptions? kernels = null)
    {
        using var candidates = Decode(heads, anchors, classes, config, inputSize, kernels);
        return Suppress(candidates, config, kernels);
    }

    /// <summary>Batched class-aware NMS over all levels' candidates: detections [B, D] padded with score 0. On a GPU
    /// our NMS kernels (no host wait) where they compile, else the tensor-op NMS; on the CPU a loop over the valid
    /// candidates (<see cref="HostNms"/>). All three give the same result.</summary>
    public static NmsResult Suppress(Candidates candidates, InferenceConfig config, KernelOptions? kernels = null)
    {
        if (candidates.Boxes.shape[2] == 5) return SuppressRotated(candidates, config, kernels);
        var (scores, boxes, classes, valid) =
            (candidates.Scores, candidates.Boxes, candidates.Classes, candidates.Valid);
        if (scores.device.type == TorchSharp.DeviceType.CPU)
            return HostNms.Run(scores, boxes, classes, valid, config.NmsThreshold, config.Detections);
        return (kernels ?? KernelOptions.Default).Nms && NmsKernel.CanRun(scores)
            ? NmsKernel.Run(scores, boxes, classes, valid, config.NmsThreshold, config.Detections)
            : BatchedNms.Run(scores, boxes, classes, valid, config.NmsThreshold, config.Detections);
    }

    /// <summary>Rotated candidates: the same NMS on their corners with exact rotated IoU (on a GPU our NMS kernel, else
    /// the host loop); the kept detections carry the candidates' [x1, y1, x2, y2, theta] boxes.</summary>
    static NmsResult SuppressRotated(Candidates candidates, InferenceConfig config, KernelOptions? kernels)
    {
        using var scope = NewDisposeScope();
        var (scores, boxes, classes, valid) =
            (candidates.Scores, candidates.Boxes, candidates.Classes, candidates.Valid);
        long b = boxes.shape[0], k = boxes.shape[1];
        var corners = RotatedBoxes.CornersOfDecoded(boxes.reshape(-1, 5).to(ScalarType.Float32)).view(b, k, 8);
        bool onGpu = scores.device.type != TorchSharp.DeviceType.CPU && (kernels ?? KernelOptions.Default).Nms
            && NmsKernel.CanRun(scores);
        var kept = onGpu ? NmsKernel.Run(scores, corners, classes, valid, config.NmsThreshold, config.Detections)
            : HostNms.Run(scores.cpu(), corners.cpu(), classes.cpu(), valid.cpu(), config.NmsThreshold,
                config.Detections);
        var at = kept.Indices.to(scores.device).clamp_min(Of(0));
        var kept5 = boxes.gather(1, at.unsqueeze(-1).expand(-1, -1, 5));
        var result = new NmsResult(kept.Scores.to(scores.device), kept5, kept.Classes.to(scores.device),
            kept.Indices.to(scores.device), kept.Count.to(scores.device));
        foreach (var t in new[] { result.Scores, result.Boxes, result.Classes, result.Indices, result.Count })
            t.MoveToOuterDisposeScope();
        return result;
    }
}
