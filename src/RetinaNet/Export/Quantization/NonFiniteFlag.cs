using static TorchSharp.torch;

namespace RetinaNet.Export.Quantization;

/// <summary>Remembers, on the device, whether any observed batch held NaN or an infinity (seen in its max, which
/// propagates both), so the check costs no host synchronisation until the end.</summary>
sealed class NonFiniteFlag : IDisposable
{
    Tensor? seen; // bool scalar

    public void Check(Tensor batchMax)
    {
        using var scope = NewDisposeScope();
        var bad = batchMax.isfinite().logical_not();
        var next = seen is null ? bad : seen.logical_or(bad);
        seen?.Dispose();
        seen = next.DetachFromDisposeScope();
    }

    public void ThrowIfSeen()
    {
        if (seen is not null && seen.cpu().item<bool>()) throw Error();
    }

    public static InvalidDataException Error() =>
        new("its input held NaN or infinite values: the model does not compute finite activations on the calibration "
            + "images");

    public void Dispose() => seen?.Dispose();
}
