namespace RetinaNet.Export.Quantization;

/// <summary>Symmetric int8 scales (amax / 127) of activation tensors by name, in the model's module order: what
/// calibration produces, what <c>--calibration-table</c> stores, what the QDQ pass puts on each convolution's input.
/// Names are convolution module paths (<c>backbones.ResNet18FPN.features.layer1.0.conv1</c>, <c>cls_head.0</c>): the
/// range belongs to that convolution's input.</summary>
public sealed class CalibrationTable
{
    public const int Int8Max = 127;
    // An input that was always zero still needs a positive scale.
    const double MinAmax = 1e-20;

    readonly OrderedDictionary<string, float> scales;

    /// <summary>The algorithm as the table's header names it (EntropyCalibration2, MinMaxCalibration, ...).</summary>
    public string Algorithm { get; }
    public IReadOnlyDictionary<string, float> Scales => scales;

    public CalibrationTable(string algorithm, IEnumerable<KeyValuePair<string, float>> scales)
    {
        Algorithm = algorithm;
        this.scales = new OrderedDictionary<string, float>(StringComparer.Ordinal);
        foreach (var (name, scale) in scales)
        {
            if (!(scale > 0 && float.IsFinite(scale))) throw new ArgumentException($"{name}: scale must be a positive "
                + $"finite number, got {scale}");
            if (!this.scales.TryAdd(name, scale)) throw new ArgumentException($"{name}: listed twice");
        }
    }

    public static CalibrationTable FromRanges(CalibrationMethod method,
        IEnumerable<KeyValuePair<string, double>> amax) =>
        new(method.TableName(),
            amax.Select(r => KeyValuePair.Create(r.Key, (float)(Math.Max(r.Value, MinAmax) / Int8Max))));

    public double Amax(string name) => (double)scales[name] * Int8Max;
}
