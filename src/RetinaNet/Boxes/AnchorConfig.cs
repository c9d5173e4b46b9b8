namespace RetinaNet.Boxes;

/// <summary>Anchor shapes per location: every ratio for every scale (ODTK order: scale-major), sizes
/// relative to the level stride.</summary>
public sealed record AnchorConfig
{
    public static readonly double[] DefaultRatios = [1.0, 2.0, 0.5];
    public static readonly double[] DefaultScales = [4 * Math.Pow(2, 0.0 / 3), 4 * Math.Pow(2, 1.0 / 3), 4 * Math.Pow(2, 2.0 / 3)];

    public IReadOnlyList<double> Ratios { get; init; } = DefaultRatios;
    public IReadOnlyList<double> Scales { get; init; } = DefaultScales;
    public int Count => Ratios.Count * Scales.Count;

    public void Validate()
    {
        if (Ratios.Count == 0 || Scales.Count == 0) throw new ArgumentException("anchor ratios and scales must not be empty");
        if (Ratios.Concat(Scales).Any(v => !(v > 0) || double.IsInfinity(v)))
            throw new ArgumentException("anchor ratios and scales must be positive numbers");
    }
}
