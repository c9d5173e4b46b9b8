namespace RetinaNet.Inference;

/// <summary>Which input shapes keep a CUDA graph (each holds its static input, its outputs and its instantiated
/// graph; their activations share one pool, <see cref="DetectionGraphs"/>), so only <c>capacity</c> do. A new shape
/// takes a free slot; with none free, it takes the least recently used one only when it comes twice in a row: a
/// folder's batches come grouped by shape, so each shape's run gets a graph, while shapes that alternate (a server's
/// mixed requests) run eagerly instead of being captured again and again.</summary>
public sealed class GraphSlots(int capacity)
{
    readonly Dictionary<string, long> lastUse = new();
    long clock;
    string? lastMiss; // the shape of the previous call, when it had no graph

    public enum Decision { Replay, Capture, Eager }

    /// <summary>What to do for <paramref name="shape"/>; with <see cref="Decision.Capture"/>,
    /// <paramref name="evict"/> is the shape whose graph must go first (null when a slot is free).</summary>
    public Decision Next(string shape, out string? evict)
    {
        evict = null;
        if (lastUse.ContainsKey(shape))
        {
            (lastUse[shape], lastMiss) = (++clock, null);
            return Decision.Replay;
        }
        bool repeated = lastMiss == shape;
        lastMiss = shape;
        if (lastUse.Count >= capacity)
        {
            if (!repeated) return Decision.Eager;
            evict = lastUse.MinBy(p => p.Value).Key;
            lastUse.Remove(evict);
        }
        (lastUse[shape], lastMiss) = (++clock, null);
        return Decision.Capture;
    }

    /// <summary>The capture <see cref="Next"/> asked for failed: the shape holds no slot.</summary>
    public void Forget(string shape) => lastUse.Remove(shape);
}
