namespace RetinaNet.Inference;

/// <summary>Which input shapes keep a CUDA graph (each graph holds its activations' memory, so only
/// <c>capacity</c> do). A new shape takes a free slot; with none free, it takes the least recently used one only when
/// it comes twice in a row: a folder's batches come grouped by shape, so each shape's run gets a graph, while shapes
/// that alternate (a server's mixed requests) run eagerly instead of being captured again and again.</summary>
public sealed class GraphSlots<TKey>(int capacity) where TKey : notnull
{
    readonly Dictionary<TKey, long> lastUse = new();
    long clock;
    TKey? lastMiss;
    bool hasMiss;

    public enum Decision { Replay, Capture, Eager }

    /// <summary>What to do for <paramref name="key"/>; with <see cref="Decision.Capture"/>, <paramref name="evict"/>
    /// is the shape whose graph must go first (default when a slot is free).</summary>
    public Decision Next(TKey key, out TKey? evict)
    {
        evict = default;
        if (lastUse.ContainsKey(key))
        {
            lastUse[key] = ++clock;
            hasMiss = false;
            return Decision.Replay;
        }
        bool repeated = hasMiss && EqualityComparer<TKey>.Default.Equals(lastMiss, key);
        (lastMiss, hasMiss) = (key, true);
        if (lastUse.Count >= capacity)
        {
            if (!repeated) return Decision.Eager;
            evict = lastUse.MinBy(p => p.Value).Key;
            lastUse.Remove(evict);
        }
        lastUse[key] = ++clock;
        hasMiss = false;
        return Decision.Capture;
    }

    /// <summary>The capture <see cref="Next"/> asked for failed: the shape holds no slot.</summary>
    public void Forget(TKey key) => lastUse.Remove(key);
}
