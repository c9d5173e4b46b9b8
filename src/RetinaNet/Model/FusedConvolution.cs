using RetinaNet.Native;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RetinaNet.Model;

/// <summary>A convolution followed by a ReLU, for inference on a GPU, run as one cuDNN call (convolution, bias,
/// residual and ReLU; <see cref="AtenOps"/>) where the convolution and a separate pass over its output would take two:
/// a body's convolution with the frozen batch norm after it folded in (weight × scale per output channel, the shift
/// as bias), or a head's convolution with its own bias. <see cref="KernelOptions.FusedConvolutions"/> turns it on.
/// Kept in float32 from the unrounded weights; converted once, at the first input, to the dtype and layout the model
/// runs in.</summary>
sealed class FusedConvolution : IDisposable
{
    readonly long[] stride, padding, dilation;
    readonly long groups;
    readonly Lock gate = new();
    Tensor weight, bias;
    bool converted;

    /// <summary><paramref name="conv"/> with <paramref name="norm"/>, the frozen norm after it (or none), folded
    /// in.</summary>
    public FusedConvolution(Conv2d conv, FrozenBatchNorm2d? norm = null)
    {
        if (conv.padding is null) throw new ArgumentException("only a convolution with explicit padding is fused");
        // cuDNN's fused engines may have none for grouped convolutions (ResNeXt), and a missing engine aborts the
        // process (AtenOps)
        if (conv.groups != 1) throw new ArgumentException("a grouped convolution is not fused");
        (stride, padding, dilation, groups) = (conv.stride, conv.padding, conv.dilation, conv.groups);
        using var scope = NewDisposeScope();
        var (w, b) = FrozenBatchNorm2d.Fold(conv, norm);
        weight = w.to(ScalarType.Float32).DetachFromDisposeScope();
        bias = b.to(ScalarType.Float32).DetachFromDisposeScope();
    }

    /// <summary>ReLU(conv(x) + shift (+ residual)) by cuDNN's fused call, or without <paramref name="relu"/> (and
    /// no residual) conv(x) + shift as one convolution with bias; null where it cannot run (not a GPU, not the dtype
    /// of the first input, a gradient wanted).</summary>
    public Tensor? TryRun(Tensor x, bool relu, Tensor? residual)
    {
        if (x.device_type != DeviceType.CUDA || !relu && residual is not null) return null;
        var (w, b) = Converted(x);
        if (w is null || b is null || !AtenOps.CanFuse(x, w, b, residual)) return null;
        if (!relu) return AtenOps.Convolution(x, w, b, stride, padding, dilation, groups);
        return residual is null ? AtenOps.ConvolutionRelu(x, w, b, stride, padding, dilation, groups)
            : AtenOps.ConvolutionAddRelu(x, w, residual, b, stride, padding, dilation, groups);
    }

    (Tensor?, Tensor?) Converted(Tensor x)
    {
        lock (gate)
        {
            if (!converted)
            {
                if (weight.device_type != x.device_type || weight.device.index != x.device.index) return (null, null);
                using var noGrad = no_grad();
                var w = weight.to(x.dtype);
                var channelsLast = Layouts.IsChannelsLast(x) ? Layouts.NhwcCopy(w) : w.contiguous();
                if (!ReferenceEquals(channelsLast, w)) w.Dispose();
                var b = bias.to(x.dtype);
                weight.Dispose(); bias.Dispose();
                (weight, bias, converted) = (channelsLast.DetachFromDisposeScope(), b.DetachFromDisposeScope(), true);
            }
            return weight.dtype == x.dtype ? (weight, bias) : (null, null);
        }
    }

    public void Dispose()
    {
        weight.Dispose();
        bias.Dispose();
    }
}
