namespace RetinaNet.Data.Loading;

/// <summary>The batches of one pass grouped by the padded shape of their images (what
/// <see cref="DetectionLoader.OnePassByShape"/> loads). A landscape image is then rarely padded to a portrait one's
/// height: mixed orientations padded together cost the model the pixels of both.
/// <para>On a GPU the first batch of each new input shape is slow (cuDNN chooses its algorithms for every
/// convolution of that shape; bench/RESULTS.md, "new input shapes"). Given that cost in pixels
/// (<c>newShapePixels</c> &gt; 0), a shape's images are padded to a larger shape of the pass wherever the pixels that
/// adds cost less than the shape would, and a shape's last, partial batch is filled with repeats of its first image
/// (marked as padding, their detections dropped) wherever that costs less than the new batch size would; each batch
/// then carries the shape it is padded to. Without it (the CPU: no such cost): full batches of one shape first, then
/// what is left of every shape, in shape order.</para></summary>
public static class ShapeBatches
{
    /// <summary>Batches of <paramref name="entries"/> (one pass, in order); <paramref name="shape"/>: an entry's
    /// padded (height, width), null when unknown (those batch together, unpadded beyond their images).</summary>
    public static List<BatchPlan> Plan(IReadOnlyList<ShardEntry> entries, int batchSize,
        Func<int, (int Height, int Width)?> shape, long newShapePixels = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var shapes = entries.Select(e => shape(e.Index)).ToArray();
        // stable: images of one shape keep their order; unknown shapes last
        var groups = Enumerable.Range(0, entries.Count).GroupBy(i => shapes[i] ?? (int.MaxValue, int.MaxValue))
            .OrderBy(g => g.Key).ToDictionary(g => g.Key, g => g.ToList());
        if (newShapePixels <= 0)
        {
            var chunks = groups.Values.Select(g => g.Select(i => entries[i]).Chunk(batchSize).ToList()).ToList();
            var full = chunks.SelectMany(g => g.Where(b => b.Length == batchSize));
            var rest = chunks.SelectMany(g => g.Where(b => b.Length < batchSize)).SelectMany(b => b);
            return [.. full.Concat(rest.Chunk(batchSize)).Select(b => BatchPlan.Of(b))];
        }
        var plans = new List<BatchPlan>();
        groups.Remove((int.MaxValue, int.MaxValue), out var unknown);
        Merge(groups, batchSize, newShapePixels);
        foreach (var (canvas, group) in groups.OrderBy(g => g.Key))
            foreach (var batch in group.Select(i => entries[i]).Chunk(batchSize))
            {
                long fill = FillPixels(batch.Length, batchSize, canvas);
                plans.Add(BatchPlan.Of(fill > 0 && fill <= newShapePixels
                    ? [.. batch, .. Enumerable.Repeat(batch[0] with { IsPadding = true }, batchSize - batch.Length)]
                    : batch, canvas));
            }
        plans.AddRange((unknown ?? []).Select(i => entries[i]).Chunk(batchSize).Select(b => BatchPlan.Of(b)));
        return plans;
    }

    static long Area((int Height, int Width) s) => (long)s.Height * s.Width;

    /// <summary>The pixels that fill the last batch of <paramref name="count"/> images of shape <paramref name="s"/>
    /// to a whole one (0 when it is whole).</summary>
    static long FillPixels(int count, int batchSize, (int, int) s)
        => (batchSize - count % batchSize) % batchSize * Area(s);

    /// <summary>Pads a group into a larger one while that saves pixels (a shape's cost counted as
    /// <paramref name="newShapePixels"/>), the largest saving first.</summary>
    static void Merge(Dictionary<(int Height, int Width), List<int>> groups, int batchSize,
        long newShapePixels)
    {
        // the pixels a group's last batch costs beyond its images: filled, or run as a new (smaller) batch shape
        long Tail(int count, (int, int) s) => Math.Min(FillPixels(count, batchSize, s),
            count % batchSize == 0 ? 0 : newShapePixels);
        while (true)
        {
            ((int, int) From, (int, int) Into, long Saving)? best = null;
            foreach (var (from, a) in groups.OrderBy(g => g.Key))
                foreach (var (into, b) in groups.OrderBy(g => g.Key))
                {
                    if (into == from || into.Height < from.Height || into.Width < from.Width) continue;
                    long saving = newShapePixels + Tail(a.Count, from) + Tail(b.Count, into)
                        - Tail(a.Count + b.Count, into) - (Area(into) - Area(from)) * a.Count;
                    if (saving > 0 && saving > (best?.Saving ?? 0)) best = (from, into, saving);
                }
            if (best is not var (f, t, _)) return;
            groups[t] = [.. groups[t].Concat(groups[f]).Order()]; // pass order within a shape
            groups.Remove(f);
        }
    }
}
