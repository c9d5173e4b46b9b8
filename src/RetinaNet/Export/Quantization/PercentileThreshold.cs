namespace RetinaNet.Export.Quantization;

/// <summary>percentile (ours): amax is the upper edge of the bin where the cumulative count of |x| reaches the given
/// percentile, so at least that share of the values lies within [−amax, amax]; it is within one bin width of the
/// exact percentile.</summary>
public static class PercentileThreshold
{
    public const double DefaultPercentile = 99.99;

    public static double Amax(AbsHistogram histogram, double percentile = DefaultPercentile)
    {
        if (!(percentile > 0 && percentile <= 100)) throw new ArgumentOutOfRangeException(nameof(percentile),
            $"percentile must be in (0, 100], got {percentile}");
        double target = percentile / 100 * histogram.Total, cumulative = 0;
        for (int i = 0; i < histogram.Bins; i++)
        {
            cumulative += histogram.Counts[i];
            if (cumulative >= target && cumulative > 0) return (i + 1) * histogram.BinWidth;
        }
        return histogram.Range;
    }
}
