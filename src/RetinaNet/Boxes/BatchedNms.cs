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
/// <summary>What one <see cref="BatchedNms.Run"/> did: blocks of candidates visited and fixed-point steps taken
/// (each step ends in a host wait when its convergence is checked).</summary>
public sealed class NmsStats
{
    public int Blocks { get; set; }
    public int Iterations { get; set; }
}

public static class BatchedNms
{
    public const int DefaultBlock = 1024;

    /// <param name="scores">[B, K]</param>
    /// <param name="boxes">[B, K, 4] inclusive corners.</param>
    /// <param name="classes">[B, K] integer class per candidate.</param>
    /// <param name="valid">[B, K] bool; invalid candidates are never kept (null: all valid).</param>
    public static NmsResult Run(Tensor scores, Tensor boxes, Tensor classes, Tensor? valid, double iouThreshold,
        int maxDetections, int block = DefaultBlock, NmsStats? stats = null)
    {
        if (boxes.shape[2] != 4) throw new ArgumentException("BatchedNms takes axis-aligned boxes [B, K, 4]; rotated "
            + "boxes' corners go to HostNms or NmsKernel");
        using var scope = NewDisposeScope();
        var sorted = Sorted.From(scores, boxes, classes, valid);
        var kept = new KeptSoFar(sorted, maxDetections);
        for (long start = 0; start < sorted.K; start += block)
        {
            using var blockScope = NewDisposeScope();
            long end = Math.Min(sorted.K, start + block);
            var (alive, suppresses) = kept.Candidates(start, end, iouThreshold);
            var keep = FixedPoint(alive, suppresses, stats);
            if (stats is not null) stats.Blocks++;
            kept.Append(start, end, keep);
            bool done = kept.Complete(end).all().item<bool>();
            if (done) break;
        }
        return kept.Result();
    }

    /// <summary>The same greedy NMS with no host wait, for a CUDA graph: only the first <paramref name="block"/>
    /// candidates, a fixed number of fixed-point steps. <c>Exact</c> (a bool scalar on the device) tells whether that
    /// equals <see cref="Run"/>'s result: the steps converged and the block held every detection (the limit was
    /// reached or no valid candidate lies beyond it). When it is false, call <see cref="Run"/>.</summary>
    public static (NmsResult Result, Tensor Exact) RunWithoutHostWait(Tensor scores, Tensor boxes, Tensor classes,
        Tensor? valid, double iouThreshold, int maxDetections, int steps = 16, int block = DefaultBlock)
    {
        using var scope = NewDisposeScope();
        var sorted = Sorted.From(scores, boxes, classes, valid);
        var kept = new KeptSoFar(sorted, maxDetections);
        long end = Math.Min(sorted.K, block);
        var (alive, suppresses) = kept.Candidates(0, end, iouThreshold);
        var keep = alive;
        for (int i = 0; i < steps - 1; i++) keep = Step(alive, suppresses, keep);
        var last = Step(alive, suppresses, keep);
        var exact = (last == keep).all() & kept.Complete(end).all();
        kept.Append(0, end, last);
        return (kept.Result(), exact.MoveToOuterDisposeScope());
    }

    static Tensor Step(Tensor alive, Tensor suppresses, Tensor keep)
        => alive & ~(keep.unsqueeze(-1) & suppresses).any(1);

    /// <summary>Solves keep = alive &amp; !(S^T keep) for strictly upper-triangular S [B, n, n].</summary>
    static Tensor FixedPoint(Tensor alive, Tensor suppresses, NmsStats? stats)
    {
        var keep = alive;
        for (int iteration = 1; ; iteration++)
        {
            if (stats is not null) stats.Iterations++;
            var next = Step(alive, suppresses, keep);
            // Most chains are short: check for convergence (a host wait) only every other step at first.
            if ((iteration % 2 == 0 || iteration > 8) && (next == keep).all().item<bool>()) return next;
            if (iteration > alive.shape[1] + 1) return next; // exact by construction after n steps
            keep = next;
        }
    }

    /// <summary>Candidates in descending score order (ties in input order; invalid ones last).</summary>
    internal sealed record Sorted(Tensor Scores, Tensor Boxes, Tensor Classes, Tensor Valid, Tensor Order,
        Tensor ValidCount)
    {
        public long Batch => Scores.shape[0];
        public long K => Scores.shape[1];

        public static Sorted From(Tensor scores, Tensor boxes, Tensor classes, Tensor? valid)
        {
            long batch = scores.shape[0], k = scores.shape[1];
            valid ??= ones(batch, k, dtype: ScalarType.Bool, device: scores.device);
            var keyed = scores.to(ScalarType.Float32).masked_fill(~valid, Of(double.NegativeInfinity));
            var (_, order) = keyed.sort(dim: 1, descending: true, stable: true);
            return new Sorted(scores.to(ScalarType.Float32).gather(1, order),
                boxes.to(ScalarType.Float32).gather(1, order.unsqueeze(-1).expand(batch, k, boxes.shape[2])),
                classes.to(ScalarType.Int64).gather(1, order), valid.gather(1, order), order, valid.sum(1));
        }
    }

    /// <summary>Kept detections so far, per image in order; slot d collects writes past the limit and is
    /// dropped.</summary>
    sealed class KeptSoFar
    {
        readonly Sorted sorted;
        readonly int d;
        readonly Tensor boxes, scores, classes, indices, count, slots;

        public KeptSoFar(Sorted sorted, int maxDetections)
        {
            (this.sorted, d) = (sorted, maxDetections);
            var device = sorted.Scores.device;
            long batch = sorted.Batch;
            boxes = zeros(batch, d + 1, 4, device: device);
            scores = zeros(batch, d + 1, device: device);
            classes = zeros(batch, d + 1, dtype: ScalarType.Int64, device: device);
            indices = full(batch, d + 1, Of(-1), dtype: ScalarType.Int64, device: device);
            count = zeros(batch, dtype: ScalarType.Int64, device: device);
            slots = Arange(d + 1, ScalarType.Int64, device).unsqueeze(0);
        }

        /// <summary>Candidates start..end: which are alive (valid, not suppressed by a box kept earlier) and which
        /// suppress which among themselves (overlap above the threshold, same class, earlier in order).</summary>
        public (Tensor Alive, Tensor Suppresses) Candidates(long start, long end, double iouThreshold)
        {
            using var threshold = iouThreshold.ToScalar();
            var bBoxes = sorted.Boxes[.., (int)start..(int)end];
            var bClasses = sorted.Classes[.., (int)start..(int)end];
            var alive = sorted.Valid[.., (int)start..(int)end];
            long len = end - start;
            if (start > 0)
            {
                var overlap = BoxOps.PairwiseIou(boxes, bBoxes) > threshold; // [B, d+1, len]
                var sameClass = classes.unsqueeze(-1) == bClasses.unsqueeze(1);
                var filled = (slots < count.unsqueeze(1)).unsqueeze(-1);
                alive = alive & ~(overlap & sameClass & filled).any(1);
            }
            var suppresses = (BoxOps.PairwiseIou(bBoxes, bBoxes) > threshold)
                & (bClasses.unsqueeze(-1) == bClasses.unsqueeze(1))
                & ones(len, len, dtype: ScalarType.Bool, device: bBoxes.device).triu(1);
            return (alive, suppresses);
        }

        /// <summary>Appends the kept candidates of start..end after those already kept, in order.</summary>
        public void Append(long start, long end, Tensor keep)
        {
            long len = end - start;
            using var limit = d.ToScalar();
            var position = count.unsqueeze(1).Plus(keep.to(ScalarType.Int64).cumsum(1)) - Of(1);
            // not where(.., d): its scalar becomes a host tensor, illegal in a CUDA graph
            var target = position.masked_fill(~(keep & (position < limit)), limit);
            boxes.scatter_(1, target.unsqueeze(-1).expand(sorted.Batch, len, 4),
                sorted.Boxes[.., (int)start..(int)end]);
            scores.scatter_(1, target, sorted.Scores[.., (int)start..(int)end]);
            classes.scatter_(1, target, sorted.Classes[.., (int)start..(int)end]);
            indices.scatter_(1, target, sorted.Order[.., (int)start..(int)end]);
            count.copy_(count.Plus(keep.sum(1)).clamp_max(limit));
        }

        /// <summary>Per image: nothing past <paramref name="end"/> can be kept any more.</summary>
        public Tensor Complete(long end)
        {
            using Scalar limit = d.ToScalar(), last = end.ToScalar();
            return (count >= limit) | (sorted.ValidCount <= last);
        }

        public NmsResult Result()
        {
            var filledOut = slots[.., ..d] < count.unsqueeze(1);
            var result = new NmsResult(
                scores[.., ..d].masked_fill(~filledOut, Of(0)),
                boxes[.., ..d].masked_fill(~filledOut.unsqueeze(-1), Of(0)),
                classes[.., ..d].masked_fill(~filledOut, Of(0)),
                indices[.., ..d].masked_fill(~filledOut, Of(-1)),
                count.clone());
            foreach (var t in new[] { result.Scores, result.Boxes, result.Classes, result.Indices, result.Count })
                t.MoveToOuterDisposeScope();
            return result;
        }
    }
}
