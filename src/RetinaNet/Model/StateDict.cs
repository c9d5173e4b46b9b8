using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Model;

/// <summary>Copies named tensors into a module's parameters and buffers with name and shape checks;
/// every mismatch is reported by name (the first few), never silently skipped.</summary>
public static class StateDict
{
    /// <summary>BatchNorm's step counter: present in PyTorch BatchNorm state dicts, meaningless when frozen.</summary>
    public static bool IsBatchCounter(string key) => key.EndsWith("num_batches_tracked", StringComparison.Ordinal);

    /// <summary>The module's parameters and persistent buffers by state-dict name.</summary>
    public static Dictionary<string, Tensor> Of(nn.Module module)
    {
        var result = new Dictionary<string, Tensor>();
        foreach (var (name, p) in module.named_parameters()) result[name] = p;
        foreach (var (name, b) in module.named_buffers(include_nonpersistent: false)) result[name] = b;
        return result;
    }

    /// <summary>Loads <paramref name="source"/> into <paramref name="module"/>. Keys of the module under
    /// <paramref name="skipTarget"/> are allowed to be absent from the source (e.g. a re-initialised class layer);
    /// source keys for which <paramref name="ignoreSource"/> is true are not required to exist in the
    /// module.</summary>
    public static void Load(nn.Module module, IReadOnlyDictionary<string, Tensor> source, string sourceName,
        Func<string, bool>? ignoreSource = null, Func<string, bool>? skipTarget = null)
    {
        var target = Of(module);
        var missing = target.Keys.Where(k => !source.ContainsKey(k) && !IsBatchCounter(k)
            && !(skipTarget?.Invoke(k) ?? false)).ToList();
        var unexpected = source.Keys.Where(k => !target.ContainsKey(k) && !IsBatchCounter(k)
            && !(ignoreSource?.Invoke(k) ?? false)).ToList();
        var wrongShape = target.Where(kv => source.TryGetValue(kv.Key, out var s)
            && !(skipTarget?.Invoke(kv.Key) ?? false) && !s.shape.SequenceEqual(kv.Value.shape))
            .Select(kv => $"{kv.Key} is [{string.Join(", ", source[kv.Key].shape)}] in the file but "
            + $"[{string.Join(", ", kv.Value.shape)}] in the model").ToList();
        if (missing.Count + unexpected.Count + wrongShape.Count > 0)
        {
            var parts = new List<string>();
            if (missing.Count > 0) parts.Add($"{missing.Count} weights missing (e.g. "
                + $"{string.Join(", ", missing.Take(3))})");
            if (unexpected.Count > 0) parts.Add($"{unexpected.Count} unexpected weights (e.g. "
                + $"{string.Join(", ", unexpected.Take(3))})");
            if (wrongShape.Count > 0) parts.Add($"{wrongShape.Count} with other shapes "
                + $"({string.Join("; ", wrongShape.Take(2))})");
            throw new InvalidDataException($"{sourceName}: weights do not fit the model: {string.Join("; ", parts)}");
        }
        using var noGrad = no_grad();
        foreach (var (key, t) in target)
            if (source.TryGetValue(key, out var s) && !(skipTarget?.Invoke(key) ?? false))
                t.copy_(s.to(t.dtype));
    }
}
