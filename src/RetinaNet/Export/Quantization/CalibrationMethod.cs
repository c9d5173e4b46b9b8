namespace RetinaNet.Export.Quantization;

/// <summary>How an activation's range is chosen from what calibration saw: the largest |x| (minmax), the
/// threshold that minimises the KL divergence of the int8 histogram (entropy, TensorRT's EntropyCalibration2), or the
/// given percentile of |x| (percentile, ours).</summary>
public enum CalibrationMethod { MinMax, Entropy, Percentile }

public static class CalibrationMethods
{
    public static readonly IReadOnlyList<string> Names = ["minmax", "entropy", "percentile"];

    public static CalibrationMethod Parse(string name) => name.ToLowerInvariant() switch
    {
        "minmax" => CalibrationMethod.MinMax,
        "entropy" => CalibrationMethod.Entropy,
        "percentile" => CalibrationMethod.Percentile,
        _ => throw new ArgumentException($"calibration method '{name}' is not one of {string.Join(", ", Names)}"),
    };

    /// <summary>The algorithm name a TensorRT calibration cache carries in its header (TensorRT's own for minmax and
    /// entropy; percentile is ours).</summary>
    public static string TableName(this CalibrationMethod method) => method switch
    {
        CalibrationMethod.MinMax => "MinMaxCalibration",
        CalibrationMethod.Entropy => "EntropyCalibration2",
        _ => "PercentileCalibration",
    };
}
