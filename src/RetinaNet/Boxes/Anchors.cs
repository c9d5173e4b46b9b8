using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Boxes;

/// <summary>ODTK's anchors. Boxes are [x1, y1, x2, y2] with ODTK's inclusive-pixel convention
/// (width = x2 - x1 + 1) everywhere in this library.</summary>
public static class Anchors
{
    /// <summary>The A anchors of one cell at <paramref name="stride"/>, centred on the cell's centre: index a =
    /// scaleIndex * ratios + ratioIndex (ODTK's generate_anchors). Returns [A, 4] float32 on the CPU.</summary>
    public static Tensor ForCell(double stride, AnchorConfig config)
    {
        var values = new float[config.Count * 4];
        int a = 0;
        foreach (var scale in config.Scales)
            foreach (var ratio in config.Ratios)
            {
                // ODTK computes in float32: ws = sqrt(stride^2 / ratio), hs = ws * ratio.
                float s = (float)stride, r = (float)ratio, sc = (float)scale;
                float ws = MathF.Sqrt(s * s / r), hs = ws * r;
                values[a * 4 + 0] = 0.5f * (s - ws * sc);
                values[a * 4 + 1] = 0.5f * (s - hs * sc);
                values[a * 4 + 2] = 0.5f * (s + ws * sc);
                values[a * 4 + 3] = 0.5f * (s + hs * sc);
                a++;
            }
        return tensor(values, [config.Count, 4]);
    }

    /// <summary>All anchors of one level with a <paramref name="height"/> x <paramref name="width"/> grid,
    /// ordered (anchor, y, x) like the heads' channels: [A * H * W, 4].</summary>
    public static Tensor ForLevel(int stride, long height, long width, AnchorConfig config, Device? device = null)
    {
        using var cell = ForCell(stride, config);
        return Shifted(cell, stride, height, width, device);
    }

    /// <summary>Rotated anchors of one level (<see cref="RotatedBoxes.CellAnchors"/>), ordered as
    /// <see cref="ForLevel"/>: their axis form [A * H * W, 4] and corners [A * H * W, 8].</summary>
    public static (Tensor Axis, Tensor Corners) RotatedForLevel(int stride, long height, long width,
        AnchorConfig config, Device? device = null)
    {
        var (axis, corners) = RotatedBoxes.CellAnchors(stride, config.Ratios, config.Scales, config.Angles);
        using (axis) using (corners)
            return (Shifted(axis, stride, height, width, device), Shifted(corners, stride, height, width, device));
    }

    /// <summary>A cell's [A, 2k] points (x, y pairs) placed at every cell of the grid: [A * H * W, 2k].</summary>
    static Tensor Shifted(Tensor cell, int stride, long height, long width, Device? device)
    {
        using var scope = NewDisposeScope();
        long values = cell.shape[1];
        using var step = stride.ToScalar();
        var ys = Arange(height, ScalarType.Float32, device) * step;
        var xs = Arange(width, ScalarType.Float32, device) * step;
        // [H, W, 2]
        var xy = stack([xs.view(1, -1).expand(height, width), ys.view(-1, 1).expand(height, width)], dim: -1);
        var shift = xy.repeat(1, 1, values / 2); // [H, W, 2k]
        var all = cell.to(device ?? CPU).view(-1, 1, 1, values).Plus(shift.unsqueeze(0)); // [A, H, W, 2k]
        return all.reshape(-1, values).MoveToOuterDisposeScope();
    }
}

/// <summary>Anchors of every level for an input size, cached per (size, device): computed once, reused by
/// training targets and inference decoding alike.</summary>
public sealed class AnchorGenerator : IDisposable
{
    readonly AnchorConfig config;
    readonly Dictionary<(long, long, string), LevelAnchors> cache = new();

    public AnchorGenerator(AnchorConfig config) => this.config = config;

    public AnchorConfig Config => config;

    /// <summary>Level anchors for feature maps of the given sizes, for an input of inputHeight x inputWidth.</summary>
    public LevelAnchors For(long inputHeight, long inputWidth, IReadOnlyList<(long H, long W)> levels, Device device)
    {
        var key = (inputHeight, inputWidth, device.ToString());
        lock (cache)
        {
            if (cache.TryGetValue(key, out var hit) && hit.Sizes.SequenceEqual(levels)) return hit;
            var strides = levels.Select(l => (int)(inputWidth / l.W)).ToArray();
            var entry = config.Rotated ? Rotated(levels, strides, device)
                : new LevelAnchors(levels.Select((l, i) => ForLevelDetached(strides[i], l.H, l.W, device)).ToArray(),
                    strides, levels.ToArray(), config.Count);
            if (cache.Remove(key, out var old)) old.Dispose();
            cache[key] = entry;
            return entry;
        }
    }

    Tensor ForLevelDetached(int stride, long h, long w, Device device)
    {
        var t = Anchors.ForLevel(stride, h, w, config, device);
        return t.DetachFromDisposeScope(); // owned by the cache, not by the caller's scope
    }

    LevelAnchors Rotated(IReadOnlyList<(long H, long W)> levels, int[] strides, Device device)
    {
        var both = levels.Select((l, i) => Anchors.RotatedForLevel(strides[i], l.H, l.W, config, device)).ToArray();
        return new LevelAnchors(both.Select(b => b.Axis.DetachFromDisposeScope()).ToArray(), strides, levels.ToArray(),
            config.Count)
        {
            CornersPerLevel = both.Select(b => b.Corners.DetachFromDisposeScope()).ToArray(),
        };
    }

    public void Dispose()
    {
        foreach (var e in cache.Values) e.Dispose();
        cache.Clear();
    }
}

/// <summary>Anchors per level ([A*H*W, 4] each; rotated anchors' axis form), their strides and grid sizes; for
/// rotated anchors also their corners.</summary>
public sealed record LevelAnchors(Tensor[] PerLevel, int[] Strides, (long H, long W)[] Sizes,
    int AnchorsPerLocation) : IDisposable
{
    Tensor? all, allCorners;
    /// <summary>Every level's anchors concatenated, [N, 4] (made once: training needs it every step).</summary>
    public Tensor All => all ??= cat(PerLevel, 0).DetachFromDisposeScope();

    /// <summary>Rotated anchors' corners per level ([A*H*W, 8] each); null for axis-aligned anchors.</summary>
    public Tensor[]? CornersPerLevel { get; init; }

    /// <summary>Every level's rotated corners concatenated, [N, 8].</summary>
    public Tensor AllCorners
        => allCorners ??= cat(CornersPerLevel
        ?? throw new InvalidOperationException("axis-aligned anchors have no corners"), 0)
        .DetachFromDisposeScope();

    public long Total => PerLevel.Sum(t => t.shape[0]);
    public long[] Counts => PerLevel.Select(t => t.shape[0]).ToArray();
    public void Dispose()
    {
        foreach (var t in PerLevel.Concat(CornersPerLevel ?? [])) t.Dispose();
        all?.Dispose();
        allCorners?.Dispose();
    }
}
