namespace RetinaNet.Export.Quantization;

/// <summary>A histogram of |x| over [0, Bins × BinWidth): bin i counts the values in [i·w, (i+1)·w) (the largest
/// value lands in the last bin).</summary>
public sealed record AbsHistogram(double[] Counts, double BinWidth)
{
    public int Bins => Counts.Length;
    public double Total => Counts.Sum();
    public double Range => Bins * BinWidth;
}
