namespace RetinaNet.Boxes;

/// <summary>Anchor shapes per location: every ratio for every scale (ODTK order: scale-major), sizes
/// relative to the level stride; for rotated boxes (ODTK's <c>--rotated-bbox</c>) each of those at every one of
/// <see cref="Angles"/> (angle-major).</summary>
public sealed record AnchorConfig
{
    public static readonly double[] DefaultRatios = [1.0, 2.0, 0.5];
    public static readonly double[] DefaultScales = [4 * Math.Pow(2, 0.0 / 3), 4 * Math.Pow(2, 1.0 / 3),
        4 * Math.Pow(2, 2.0 / 3)];

    public IReadOnlyList<double> Ratios { get; init; } = DefaultRatios;
    public IReadOnlyList<double> Scales { get; init; } = DefaultScales;
    /// <summary>Anchor angles in radians; empty for axis-aligned boxes.</summary>
    public IReadOnlyList<double> Angles { get; init; } = [];
    public int Count => Ratios.Count * Scales.Count * Math.Max(1, Angles.Count);
    public bool Rotated => Angles.Count > 0;

    /// <summary>ODTK's angles of rotated anchors: −π/6, 0, π/6.</summary>
    public static readonly double[] DefaultAngles = [-Math.PI / 6, 0, Math.PI / 6];

    public void Validate()
    {
        if (Ratios.Count == 0 || Scales.Count == 0)
            throw new ArgumentException("anchor ratios and scales must not be empty");
        if (Ratios.Concat(Scales).Any(v => !(v > 0) || double.IsInfinity(v)))
            throw new ArgumentException("anchor ratios and scales must be positive numbers");
        if (Angles.Any(a => !double.IsFinite(a))) throw new ArgumentException("anchor angles must be finite numbers");
    }
}
