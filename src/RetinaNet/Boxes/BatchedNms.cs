using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Boxes;

/// <summary>Kept detections per image, score-ordered and padded with zeros (index -1) past <c>Count</c>.</summary>
public sealed record NmsResult(Tensor Scores, Tensor Boxes, Tensor Classes, Tensor Indices, Tensor Count) : IDisposable
{
    public void Dispose() { Scores.Dispose(); Boxes.Dispose(); Classes.Dispose(); Indices.Dispose(); Count.Dispose(); }
}

/// <summary>Class-aware greedy NMS for a batch, on the device, with exactly the greedy result (candidates in
/// descending score order, ties in input order; a candidate is dropped if its IoU with an already kept box
/// of its class exceeds the threshold), truncated to the first <c>maxDetections</c> kept.
///
/// Candidates are taken in score-sorted blocks. Inside a block the greedy keep-vector is the unique fixed point
/// of keep[j] = alive[j] and no i &lt; j with keep[i] and S[i, j] (S: overlap above threshold, same class),
/// reached by iterating that equation: iteration t fixes at least entries 0..t, so it ends after the longest
/// chain of suppressions, not after one step per box. The host waits only for the convergence check and once
/// per block, never per box; usually one block holds all <c>maxDetections</c>.</summary>
public static class BatchedNms
{
    public const int DefaultBlock = 1024;

    /// <param name="scores">[B, K]</param>
    /// <param name="boxes">[B, K, 4] inclusive corners.</param>
    /// <param name="classes">[B, K] integer class per candidate.</param>
    /// <param name="valid">[B, K] bool; invalid candidates are never kept (null: all valid).</param>
    public static NmsResult Run(Tensor scores, Tensor boxes, Tensor classes, Tensor? valid, double iouThreshold, int maxDetections, int block = DefaultBlock)
    {
        using var scope = NewDisposeScope();
        long batch = scores.shape[0], k = scores.shape[1];
        int d = maxDetections;
        var device = scores.device;
        valid ??= ones(batch, k, dtype: ScalarType.Bool, device: device);

        var keyed = scores.to(ScalarType.Float32).masked_fill(~valid, float.NegativeInfinity);
        var (_, order) = keyed.sort(dim: 1, descending: true, stable: true);
        var sScores = scores.to(ScalarType.Float32).gather(1, order);
        var sBoxes = boxes.to(ScalarType.Float32).gather(1, order.unsqueeze(-1).expand(batch, k, 4));
        var sClasses = classes.to(ScalarType.Int64).gather(1, order);
        var sValid = valid.gather(1, order);
        var validCount = valid.sum(1);

        // Kept so far; slot d collects writes past the limit and is dropped at the end.
        var keptBoxes = zeros(batch, d + 1, 4, device: device);
        var keptScores = zeros(batch, d + 1, device: device);
        var keptClasses = zeros(batch, d + 1, dtype: ScalarType.Int64, device: device);
        var keptIndices = full(batch, d + 1, -1L, dtype: ScalarType.Int64, device: device);
        var keptCount = zeros(batch, dtype: ScalarType.Int64, device: device);
        var slots = arange(d + 1, dtype: ScalarType.Int64, device: device).unsqueeze(0);

        for (long start = 0; start < k; start += block)
        {
            using var blockScope = NewDisposeScope();
            long end = Math.Min(k, start + block), len = end - start;
            var bBoxes = sBoxes[.., (int)start..(int)end];
            var bClasses = sClasses[.., (int)start..(int)end];
            var alive = sValid[.., (int)start..(int)end];

            if (start > 0)
            {
                var overlap = BoxOps.PairwiseIou(keptBoxes, bBoxes) > iouThreshold; // [B, d+1, len]
                var sameClass = keptClasses.unsqueeze(-1) == bClasses.unsqueeze(1);
                var filled = (slots < keptCount.unsqueeze(1)).unsqueeze(-1);
                alive = alive & ~(overlap & sameClass & filled).any(1);
            }

            var suppresses = (BoxOps.PairwiseIou(bBoxes, bBoxes) > iouThreshold)
                & (bClasses.unsqueeze(-1) == bClasses.unsqueeze(1))
                & ones(len, len, dtype: ScalarType.Bool, device: device).triu(1);
            var keep = FixedPoint(alive, suppresses);

            // Append this block's kept candidates after those already kept, in order.
            var position = keptCount.unsqueeze(1) + keep.to(ScalarType.Int64).cumsum(1) - 1;
            var target = where(keep & (position < d), position, d);
            keptBoxes.scatter_(1, target.unsqueeze(-1).expand(batch, len, 4), bBoxes);
            keptScores.scatter_(1, target, sScores[.., (int)start..(int)end]);
            keptClasses.scatter_(1, target, bClasses);
            keptIndices.scatter_(1, target, order[.., (int)start..(int)end]);
            keptCount.copy_((keptCount + keep.sum(1)).clamp_max(d));

            bool done = ((keptCount >= d) | (validCount <= end)).all().item<bool>();
            if (done) break;
        }

        var filledOut = slots[.., ..d] < keptCount.unsqueeze(1);
        var result = new NmsResult(
            keptScores[.., ..d].masked_fill(~filledOut, 0),
            keptBoxes[.., ..d].masked_fill(~filledOut.unsqueeze(-1), 0),
            keptClasses[.., ..d].masked_fill(~filledOut, 0),
            keptIndices[.., ..d].masked_fill(~filledOut, -1),
            keptCount);
        foreach (var t in new[] { result.Scores, result.Boxes, result.Classes, result.Indices, result.Count }) t.MoveToOuterDisposeScope();
        return result;
    }

    /// <summary>Solves keep = alive &amp; !(S^T keep) for strictly upper-triangular S [B, n, n].</summary>
    static Tensor FixedPoint(Tensor alive, Tensor suppresses)
    {
        var keep = alive;
        for (int iteration = 1; ; iteration++)
        {
            var next = alive & ~(keep.unsqueeze(-1) & suppresses).any(1);
            // Most chains are short: check for convergence (a host wait) only every other step at first.
            if ((iteration % 2 == 0 || iteration > 8) && (next == keep).all().item<bool>()) return next;
            if (iteration > alive.shape[1] + 1) return next; // exact by construction after n steps
            keep = next;
        }
    }
}
