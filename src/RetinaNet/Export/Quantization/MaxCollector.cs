using static TorchSharp.torch;

namespace RetinaNet.Export.Quantization;

/// <summary>minmax: the largest |x| seen, kept as a device scalar.</summary>
public sealed class MaxCollector : IRangeCollector
{
    Tensor? max;

    public void Observe(Tensor activations)
    {
        using var scope = NewDisposeScope();
        var batchMax = activations.detach().abs().max().to(ScalarType.Float32);
        var next = max is null ? batchMax : max.maximum(batchMax);
        max?.Dispose();
        max = next.DetachFromDisposeScope();
    }

    public double Amax()
    {
        if (max is null) throw new InvalidOperationException("no activations were observed");
        double amax = max.cpu().item<float>();
        return double.IsFinite(amax) ? amax : throw NonFiniteFlag.Error();
    }

    public void Dispose() => max?.Dispose();
}
