using static TorchSharp.torch;

namespace RetinaNet.Export.Quantization;

/// <summary>entropy and percentile: a device histogram of |x| (<see cref="HistogramCollector"/>), reduced to amax
/// by a threshold rule at the end.</summary>
public sealed class HistogramRangeCollector(Func<AbsHistogram, double> threshold) : IRangeCollector
{
    readonly HistogramCollector histogram = new();

    public void Observe(Tensor activations) => histogram.Observe(activations);

    public double Amax() => threshold(histogram.Result());

    public void Dispose() => histogram.Dispose();
}
