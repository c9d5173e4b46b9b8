using RetinaNet.Native;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RetinaNet.Model;

/// <summary>A convolution followed by a ReLU, for inference on a GPU, run as one cuDNN call (convolution, bias,
/// residual and ReLU; <see cref="AtenOps"/>) where the convolution and a separate pass over its output would take two:
/// a body's convolution with the frozen batch norm after it folded in (weight × scale per output channel, the shift
/// as bias), or a head's convolution with its own bias; without a ReLU, a downsample's convolution with its norm
/// folded in, cuDNN adding the bias. <see cref="KernelOptions.FusedConvolutions"/> turns it on. Folded in float64 from
/// the unrounded weights, then stored once in the dtype and layout the model will run in: converting at the first
/// input instead could free the float32 copy on one stream while a graph's warm-up on another still read it.</summary>
sealed class FusedConvolution : IDisposable
{
    readonly long[] stride, padding, dilation;
    readonly long groups;
    readonly Tensor weight, bias;
    // the layout asked for, not read back from the weight: a 1×1 kernel's NHWC copy has NCHW strides too
    readonly bool channelsLast;

    /// <summary><paramref name="conv"/> with <paramref name="norm"/>, the frozen norm after it (or none), folded in,
    /// kept in <paramref name="dtype"/> (null: the convolution's own) and channels-last where asked.</summary>
    public FusedConvolution(Conv2d conv, FrozenBatchNorm2d? norm, ScalarType? dtype, bool channelsLast)
    {
        if (conv.padding is null) throw new ArgumentException("only a convolution with explicit padding is fused");
        // cuDNN's fused engines may have none for grouped convolutions (ResNeXt), and a missing engine aborts the
        // process (AtenOps)
        if (conv.groups != 1) throw new ArgumentException("a grouped convolution is not fused");
        (stride, padding, dilation, groups) = (conv.stride, conv.padding, conv.dilation, conv.groups);
        this.channelsLast = channelsLast;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (w, b) = FrozenBatchNorm2d.Fold(conv, norm);
        var type = dtype ?? conv.weight!.dtype;
        w = w.to(type);
        weight = (channelsLast ? Layouts.NhwcCopy(w) : w.contiguous()).DetachFromDisposeScope();
        bias = b.to(type).DetachFromDisposeScope();
    }

    /// <summary>ReLU(conv(x) + shift (+ residual)) by cuDNN's fused call, or without <paramref name="relu"/> (and
    /// no residual) conv(x) + shift as one convolution with bias; null where it cannot run (not a GPU, another dtype,
    /// device or layout than the stored weights', a gradient wanted).</summary>
    public Tensor? TryRun(Tensor x, bool relu, Tensor? residual)
    {
        if (x.device_type != DeviceType.CUDA || !relu && residual is not null) return null;
        if (Layouts.IsChannelsLast(x) != channelsLast || !AtenOps.CanFuse(x, weight, bias, residual)) return null;
        if (!relu) return AtenOps.Convolution(x, weight, bias, stride, padding, dilation, groups);
        return residual is null ? AtenOps.ConvolutionRelu(x, weight, bias, stride, padding, dilation, groups)
            : AtenOps.ConvolutionAddRelu(x, weight, residual, bias, stride, padding, dilation, groups);
    }

    public void Dispose()
    {
        weight.Dispose();
        bias.Dispose();
    }
}
