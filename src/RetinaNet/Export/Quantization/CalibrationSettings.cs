namespace RetinaNet.Export.Quantization;

/// <summary>How to calibrate: the method (entropy, TensorRT's default, unless told) and, for percentile, which
/// one.</summary>
public sealed record CalibrationSettings(CalibrationMethod Method = CalibrationMethod.Entropy,
    double Percentile = PercentileThreshold.DefaultPercentile)
{
    public IRangeCollector NewCollector() => Method switch
    {
        CalibrationMethod.MinMax => new MaxCollector(),
        CalibrationMethod.Entropy => new HistogramRangeCollector(h => EntropyThreshold.Amax(h)),
        _ => new HistogramRangeCollector(h => PercentileThreshold.Amax(h, Percentile)),
    };
}
