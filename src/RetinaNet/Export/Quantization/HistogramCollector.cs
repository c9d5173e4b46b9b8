using static TorchSharp.torch;

namespace RetinaNet.Export.Quantization;

/// <summary>The histogram of |x| over the calibration batches, accumulated on the tensor's device with a fixed number
/// of bins (2048, as TensorRT's entropy calibration). As TensorRT documents for IInt8EntropyCalibrator2 ("if it
/// encounters a value larger than the current histogram max, the histogram range is increased by a power of two"),
/// the first batch sets the range and a later batch with a larger value doubles it as often as needed: adjacent bins
/// merge, so the counts stay exact. Everything stays on the device (the growth is tensor arithmetic too): no host
/// synchronisation per batch.</summary>
public sealed class HistogramCollector(int bins = HistogramCollector.DefaultBins) : IDisposable
{
    public const int DefaultBins = 2048;
    // histc counts in float32: chunks of at most 2^24 values keep every count exact; the sum is kept in float64.
    const long ChunkSize = 1L << 24;
    // A first batch of zeros still needs a positive range; doubling from here reaches any float32 value.
    const float MinRange = 1e-20f;

    Tensor? counts; // float64 [bins]
    Tensor? range;  // float32 scalar: the histogram covers [0, range]
    readonly NonFiniteFlag nonFinite = new();

    public void Observe(Tensor activations)
    {
        using var scope = NewDisposeScope();
        var values = activations.detach().to(ScalarType.Float32).abs().flatten();
        nonFinite.Check(values.max());
        values.nan_to_num_(0, 0, 0); // reported at the end; meanwhile the histogram stays valid
        var batchMax = values.max();
        Tensor nextRange, nextCounts;
        if (range is null || counts is null)
        {
            nextRange = batchMax.clamp_min(Of(MinRange));
            nextCounts = zeros(bins, ScalarType.Float64, values.device);
        }
        else
        {
            var doublings = (batchMax / range).log2().ceil().clamp_min(Of(0));
            var factor = full_like(doublings, Of(2)).pow(doublings);
            factor = where(range * factor < batchMax, factor * Of(2), factor); // log2 rounded down by an ulp
            var merged = Arange(bins, ScalarType.Float32, values.device).div(factor).floor().to(ScalarType.Int64);
            nextCounts = zeros(bins, ScalarType.Float64, values.device).index_add_(0, merged, counts, Of(1));
            nextRange = range * factor;
        }
        var scaled = values / nextRange; // in [0, 1]; histc's last bin includes 1
        foreach (var chunk in scaled.split(ChunkSize))
            nextCounts.Plus_(chunk.histc(bins, 0, 1).to(ScalarType.Float64));
        counts?.Dispose(); range?.Dispose();
        counts = nextCounts.DetachFromDisposeScope();
        range = nextRange.DetachFromDisposeScope();
    }

    public bool IsEmpty => counts is null;

    /// <summary>The counts and bin width on the host (one transfer).</summary>
    public AbsHistogram Result()
    {
        if (counts is null || range is null) throw new InvalidOperationException("no activations were observed");
        nonFinite.ThrowIfSeen();
        return new AbsHistogram(counts.cpu().data<double>().ToArray(), range.cpu().item<float>() / (double)bins);
    }

    public void Dispose() { counts?.Dispose(); range?.Dispose(); nonFinite.Dispose(); }
}
