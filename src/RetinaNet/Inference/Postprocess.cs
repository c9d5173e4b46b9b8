using RetinaNet.Boxes;
using RetinaNet.Model;
using static TorchSharp.torch;

namespace RetinaNet.Inference;

/// <summary>Candidates of all levels for a batch: [B, K] scores, [B, K, 4] boxes, [B, K] classes, [B, K] valid.</summary>
public sealed record Candidates(Tensor Scores, Tensor Boxes, Tensor Classes, Tensor Valid) : IDisposable
{
    public void Dispose() { Scores.Dispose(); Boxes.Dispose(); Classes.Dispose(); Valid.Dispose(); }
}

/// <summary>From head outputs to detections, for the whole batch on the device: per level the top-n class
/// scores (ODTK's decode: score &gt;= threshold, at most top-n per level and image), their boxes decoded
/// against their anchors, then one batched class-aware NMS over all levels.</summary>
public static class Postprocess
{
    public static Candidates Decode(HeadOutputs heads, LevelAnchors anchors, int classes, InferenceConfig config, (long W, long H) inputSize)
    {
        using var scope = NewDisposeScope();
        var scores = new List<Tensor>(); var boxes = new List<Tensor>(); var labels = new List<Tensor>(); var valid = new List<Tensor>();
        int a = anchors.AnchorsPerLocation;
        for (int level = 0; level < heads.ClassLogits.Length; level++)
        {
            var cls = heads.ClassLogits[level];
            long batch = cls.shape[0], h = cls.shape[2], w = cls.shape[3], hw = h * w;
            var probabilities = cls.to(ScalarType.Float32).sigmoid().reshape(batch, -1); // index ((a*C + c)*H + y)*W + x
            int k = (int)Math.Min(config.TopN, probabilities.shape[1]);
            var (top, index) = probabilities.topk(k, dim: 1);
            var anchorIndex = index.div(classes * hw, rounding_mode: RoundingMode.floor);
            var classIndex = index.div(hw, rounding_mode: RoundingMode.floor).remainder(classes);
            var pixel = index.remainder(hw);
            // Box channel a*4 + j at pixel p sits at flat index (a*4 + j)*HW + p.
            var deltaIndex = ((anchorIndex * 4 * hw + pixel).unsqueeze(-1) + arange(4, dtype: ScalarType.Int64, device: cls.device) * hw).reshape(batch, -1);
            var deltas = heads.BoxDeltas[level].reshape(batch, -1).gather(1, deltaIndex).view(batch, k, 4);
            var anchorBoxes = anchors.PerLevel[level].index_select(0, (anchorIndex * hw + pixel).flatten()).view(batch, k, 4);
            boxes.Add(BoxCoder.Decode(deltas, anchorBoxes, (inputSize.W, inputSize.H)));
            scores.Add(top);
            labels.Add(classIndex);
            valid.Add(top >= config.ScoreThreshold);
        }
        var result = new Candidates(cat(scores, 1), cat(boxes, 1), cat(labels, 1), cat(valid, 1));
        foreach (var t in new[] { result.Scores, result.Boxes, result.Classes, result.Valid }) t.MoveToOuterDisposeScope();
        return result;
    }

    /// <summary>Decode + NMS: detections [B, D] padded with score 0.</summary>
    public static NmsResult Detect(HeadOutputs heads, LevelAnchors anchors, int classes, InferenceConfig config, (long W, long H) inputSize)
    {
        using var candidates = Decode(heads, anchors, classes, config, inputSize);
        return BatchedNms.Run(candidates.Scores, candidates.Boxes, candidates.Classes, candidates.Valid, config.NmsThreshold, config.Detections);
    }
}
