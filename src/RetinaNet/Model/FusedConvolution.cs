using RetinaNet.Native;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RetinaNet.Model;

/// <summary>A convolution followed by a ReLU, for inference on a GPU, run as one cuDNN call (convolution, bias,
/// residual and ReLU; <see cref="AtenOps"/>) where the convolution and a separate pass over its output would take two:
/// a body's convolution with the frozen batch norm after it folded in (weight × scale per output channel, the shift
/// as bias), or a head's convolution with its own bias; without a ReLU and a bias, a downsample's convolution with its
/// norm's scale folded in (<see cref="FoldedJoin"/>). <see cref="KernelOptions.FusedConvolutions"/> turns it on.
/// Folded in float64 from the unrounded weights, then stored once in the dtype and layout the model will run in:
/// converting at the first input instead could free the float32 copy on one stream while a graph's warm-up on another
/// still read it.</summary>
sealed class FusedConvolution : IDisposable
{
    readonly long[] stride, padding, dilation;
    const long Groups = 1; // grouped convolutions are not fused (Folded)
    readonly Tensor weight;
    readonly Tensor? bias;
    // the layout asked for, not read back from the weight: a 1×1 kernel's NHWC copy has NCHW strides too
    readonly bool channelsLast;

    /// <summary><paramref name="conv"/> with <paramref name="norm"/>, the frozen norm after it (or none), folded in,
    /// kept in <paramref name="dtype"/> (null: the convolution's own) and channels-last where asked; with
    /// <paramref name="extraBias"/> (float64) added to the bias, or with no bias at all.</summary>
    public FusedConvolution(Conv2d conv, FrozenBatchNorm2d? norm, ScalarType? dtype, bool channelsLast,
        Tensor? extraBias = null, bool withBias = true)
        : this(Folded(conv, norm, extraBias), conv.stride, conv.padding!, conv.dilation, dtype ?? conv.weight!.dtype,
            channelsLast, withBias)
    {
    }

    /// <summary>A convolution of already folded float64 <paramref name="folded"/> weight and bias (disposed here),
    /// stored in <paramref name="dtype"/>.</summary>
    public FusedConvolution((Tensor Weight, Tensor Bias) folded, long[] stride, long[] padding, long[] dilation,
        ScalarType dtype, bool channelsLast, bool withBias = true)
    {
        (this.stride, this.padding, this.dilation) = (stride, padding, dilation);
        this.channelsLast = channelsLast;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var w = folded.Weight.to(dtype);
        weight = (channelsLast ? Layouts.NhwcCopy(w) : w.contiguous()).DetachFromDisposeScope();
        bias = withBias ? folded.Bias.to(dtype).DetachFromDisposeScope() : null;
        folded.Weight.Dispose();
        folded.Bias.Dispose();
    }

    static (Tensor Weight, Tensor Bias) Folded(Conv2d conv, FrozenBatchNorm2d? norm, Tensor? extraBias)
    {
        if (conv.padding is null) throw new ArgumentException("only a convolution with explicit padding is fused");
        // cuDNN's fused engines may have none for grouped convolutions (ResNeXt), and a missing engine aborts the
        // process (AtenOps)
        if (conv.groups != 1) throw new ArgumentException("a grouped convolution is not fused");
        var (w, b) = FrozenBatchNorm2d.Fold(conv, norm);
        if (extraBias is null) return (w, b);
        using (b) return (w, b.Plus(extraBias));
    }

    /// <summary>ReLU(conv(x) + bias (+ residual)) by cuDNN's fused call, or without <paramref name="relu"/> (and
    /// no residual) conv(x) (+ bias) as one convolution; null where it cannot run (<see cref="CanRun"/>).</summary>
    public Tensor? TryRun(Tensor x, bool relu, Tensor? residual) =>
        CanRun(x, relu, residual) ? Run(x, relu, residual) : null;

    /// <summary>Not where: not a GPU, another dtype, device or layout than the stored weights', a gradient wanted, a
    /// residual without a ReLU.</summary>
    public bool CanRun(Tensor x, bool relu, Tensor? residual) =>
        x.device_type == DeviceType.CUDA && (relu || residual is null) && Layouts.IsChannelsLast(x) == channelsLast
        && AtenOps.CanFuse(x, weight, bias, residual);

    public Tensor Run(Tensor x, bool relu, Tensor? residual)
    {
        if (!relu) return AtenOps.Convolution(x, weight, bias, stride, padding, dilation, Groups);
        return residual is null ? AtenOps.ConvolutionRelu(x, weight, bias, stride, padding, dilation, Groups)
            : AtenOps.ConvolutionAddRelu(x, weight, residual, bias, stride, padding, dilation, Groups);
    }

    public void Dispose()
    {
        weight.Dispose();
        bias?.Dispose();
    }
}

/// <summary>A residual block's last convolution (norm folded, + identity, ReLU) together with its downsample: the
/// downsample's norm scale folded into its 1×1 convolution and its shift added to the last convolution's bias instead,
/// so the downsample runs as a bare convolution and cuDNN adds both shifts in the fused call's epilogue: no pass of
/// its own for the downsample's norm or bias. Both run or neither (the block then runs as before).</summary>
sealed class FoldedJoin : IDisposable
{
    readonly FusedConvolution last, down;

    public FoldedJoin(Conv2d lastConv, FrozenBatchNorm2d lastNorm, Conv2d downConv, FrozenBatchNorm2d downNorm,
        ScalarType? dtype, bool channelsLast)
    {
        using var scope = NewDisposeScope();
        var (_, shift) = FrozenBatchNorm2d.Fold(downConv, downNorm);
        down = new FusedConvolution(downConv, downNorm, dtype, channelsLast, withBias: false);
        last = new FusedConvolution(lastConv, lastNorm, dtype, channelsLast, extraBias: shift);
    }

    /// <summary>ReLU(last(<paramref name="y"/>) + down(<paramref name="x"/>)) with both norms; null where either call
    /// cannot run.</summary>
    public Tensor? TryRun(Tensor y, Tensor x)
    {
        if (!down.CanRun(x, relu: false, null) || !last.CanRun(y, relu: true, null)) return null;
        using var identity = down.Run(x, relu: false, null);
        return last.Run(y, relu: true, identity);
    }

    public void Dispose()
    {
        last.Dispose();
        down.Dispose();
    }
}
