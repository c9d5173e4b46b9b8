using static TorchSharp.torch;

namespace RetinaNet.Export.Quantization;

/// <summary>Accumulates what an activation tensor holds over the calibration batches, on the tensor's device
/// (no host synchronisation per batch), and gives its range |x| ≤ amax at the end.</summary>
public interface IRangeCollector : IDisposable
{
    void Observe(Tensor activations);

    /// <summary>The calibrated amax (one host transfer); an error if nothing was observed.</summary>
    double Amax();
}
