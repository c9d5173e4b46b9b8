using RetinaNet.Native;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RetinaNet.Model;

/// <summary>Batch norm with fixed statistics and affine parameters, as detectors fine-tune with small
/// per-GPU batches. Everything is a buffer (never trained), named as torchvision's BatchNorm2d so its
/// checkpoints load as they are; <c>num_batches_tracked</c> is kept for ODTK's state-dict key set.</summary>
public sealed class FrozenBatchNorm2d : nn.Module<Tensor, Tensor>
{
    public const double Eps = 1e-5;
    readonly Tensor weight, bias, running_mean, running_var, num_batches_tracked;

    public FrozenBatchNorm2d(long channels) : base(nameof(FrozenBatchNorm2d))
    {
        weight = ones(channels);
        bias = zeros(channels);
        running_mean = zeros(channels);
        running_var = ones(channels);
        num_batches_tracked = tensor(0L);
        register_buffer(nameof(weight), weight);
        register_buffer(nameof(bias), bias);
        register_buffer(nameof(running_mean), running_mean);
        register_buffer(nameof(running_var), running_var);
        register_buffer(nameof(num_batches_tracked), num_batches_tracked);
    }

    public long Channels => weight.shape[0];

    /// <summary>Per-channel (scale, shift) such that y = x * scale + shift, in float32.</summary>
    public (Tensor Scale, Tensor Shift) Affine()
    {
        var scale = weight * running_var.Plus(Of(Eps)).rsqrt();
        return (scale, bias - running_mean * scale);
    }

    /// <summary>While set, the next forward takes its statistics from its input (per channel over batch and space)
    /// before normalising: data-dependent initialisation for training without ImageNet weights, where frozen
    /// identity statistics would leave a deep network unnormalised.</summary>
    public bool Calibrating
    {
        get => calibrating;
        set { calibrating = value; DropCachedAffine(); }
    }
    bool calibrating;

    Tensor? cachedScale, cachedShift;

    /// <summary>Whether <see cref="Apply"/> runs our kernel; the model sets its own options here
    /// (<see cref="RetinaNetModel.Kernels"/>).</summary>
    public KernelOptions Kernels { get; internal set; } = KernelOptions.Default;

    /// <summary>Fixes (scale, shift) in float32 for an inference-only model, before its weights are converted to bf16:
    /// <see cref="Apply"/> then spends no kernels on them (at batch 1 in a CUDA graph, 53 layers × 5 tiny
    /// kernels).</summary>
    public void CacheAffine()
    {
        DropCachedAffine();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var (scale, shift) = Affine();
        cachedScale = scale.to(ScalarType.Float32).contiguous().DetachFromDisposeScope();
        cachedShift = shift.to(ScalarType.Float32).contiguous().DetachFromDisposeScope();
    }

    void DropCachedAffine()
    {
        cachedScale?.Dispose(); cachedShift?.Dispose();
        cachedScale = cachedShift = null;
        folded?.Dispose();
        joined?.Dispose();
        (folded, joined) = (null, null);
    }

    FusedConvolution? folded;
    FoldedJoin? joined;

    /// <summary>The weight and bias of <paramref name="conv"/> with <paramref name="norm"/> (the frozen norm after it,
    /// or none) folded in: W' = W * s per output channel, b' = b * s + t, with y = x * s + t the norm's affine map.
    /// In float64 from the stored statistics, for the caller to round once.</summary>
    public static (Tensor Weight, Tensor Bias) Fold(Conv2d conv, FrozenBatchNorm2d? norm)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var weight = conv.weight!.detach().to(ScalarType.Float64);
        var bias = conv.bias is { } b ? b.detach().to(ScalarType.Float64)
            : zeros(weight.shape[0], ScalarType.Float64, weight.device);
        if (norm is not null)
        {
            var buffers = norm.named_buffers().ToDictionary(n => n.name, n => n.buffer.detach().to(ScalarType.Float64));
            var scale = buffers["weight"] * buffers["running_var"].Plus(Of(Eps)).rsqrt();
            var shift = buffers["bias"] - buffers["running_mean"] * scale;
            weight = weight * scale.view(-1, 1, 1, 1);
            bias = (bias * scale).Plus(shift);
        }
        return (weight.MoveToOuterDisposeScope(), bias.MoveToOuterDisposeScope());
    }

    /// <summary>For an inference-only model with <see cref="KernelOptions.FusedConvolutions"/>: folds this norm into
    /// <paramref name="conv"/>, the convolution it follows, so that <see cref="Convolve"/> runs both (with the residual
    /// and the ReLU) as one cuDNN call on a GPU, in <paramref name="dtype"/> (null: the convolution's) and channels-last
    /// where asked: what the model will run in. Before a conversion to bf16, as <see cref="CacheAffine"/>.</summary>
    public void FoldInto(Conv2d conv, ScalarType? dtype = null, bool channelsLast = false)
    {
        folded?.Dispose();
        folded = new FusedConvolution(conv, this, dtype, channelsLast);
    }

    /// <summary>For an inference-only model with <see cref="KernelOptions.FoldedDownsamples"/>: this norm follows
    /// <paramref name="last"/>, its residual block's last convolution, whose identity is <paramref name="down"/> with
    /// <paramref name="downNorm"/>; both run as one join (<see cref="FoldedJoin"/>, <see cref="TryJoined"/>).</summary>
    public void JoinDownsample(Conv2d last, Conv2d down, FrozenBatchNorm2d downNorm, ScalarType? dtype,
        bool channelsLast)
    {
        joined?.Dispose();
        joined = new FoldedJoin(last, this, down, downNorm, dtype, channelsLast);
    }

    /// <summary>ReLU(this norm of the last convolution of <paramref name="y"/> + the downsample of
    /// <paramref name="x"/>) as the join's two cuDNN calls; null where the downsample was not joined or a call cannot
    /// run.</summary>
    public Tensor? TryJoined(Tensor y, Tensor x) => joined?.TryRun(y, x);

    /// <summary><see cref="Apply"/> of <paramref name="conv"/>'s output on <paramref name="x"/>; one cuDNN call where
    /// this norm was folded into it (<see cref="FoldInto"/>; calibrating drops the fold) and the call can
    /// run.</summary>
    public Tensor Convolve(Conv2d conv, Tensor x, bool relu, Tensor? residual = null) =>
        folded?.TryRun(x, relu, residual) ?? Apply(conv.call(x), relu, residual);

    protected override void Dispose(bool disposing)
    {
        if (disposing) DropCachedAffine();
        base.Dispose(disposing);
    }

    /// <summary>The norm of a convolution's output <paramref name="x"/>, then + <paramref name="residual"/>, then ReLU
    /// where asked. On a GPU one pass of our kernel (<see cref="AffineReluKernel"/>): in place on x where no gradient
    /// is needed, else as an autograd node (<see cref="FrozenNormReluFunction"/>). Elsewhere libtorch's addcmul,
    /// add_, relu_.</summary>
    public Tensor Apply(Tensor x, bool relu, Tensor? residual = null)
    {
        if (!calibrating && Kernels.AffineRelu && AffineReluKernel.CanRun(x, residual))
        {
            bool needsGrad = is_grad_enabled() && (x.requires_grad || residual is { requires_grad: true });
            if (!needsGrad && cachedScale is not null && cachedShift is not null
                && cachedScale.device_type == x.device_type && cachedScale.device.index == x.device.index)
                return AffineReluKernel.Apply(x, cachedScale, cachedShift, residual, relu);
            if (!needsGrad || Kernels.AffineReluInTraining)
            {
                using var scope = NewDisposeScope();
                var (scale, shift) = Affine();
                scale = scale.to(ScalarType.Float32, x.device).contiguous();
                shift = shift.to(ScalarType.Float32, x.device).contiguous();
                if (!needsGrad) { AffineReluKernel.Apply(x, scale, shift, residual, relu); return x; }
                return FrozenNormReluFunction.Apply(x, scale, shift, residual, relu).MoveToOuterDisposeScope();
            }
        }
        var y = forward(x);
        if (residual is not null) y = y.Plus_(residual);
        return relu ? nn.functional.relu(y, inplace: true) : y;
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        if (calibrating)
            using (no_grad())
            {
                var f = x.to(ScalarType.Float32);
                running_mean.copy_(f.mean([0, 2, 3]));
                running_var.copy_(f.var([0, 2, 3], unbiased: false));
                weight.fill_(Of(1)); bias.fill_(Of(0));
            }
        var (scale, shift) = Affine();
        var shape = new long[] { 1, -1, 1, 1 };
        // Cast to the activation dtype so autocast (bf16/fp16) activations stay in low precision.
        // one pass over x
        return addcmul(shift.to(x.dtype).view(shape), x, scale.to(x.dtype).view(shape), Of(1))
            .MoveToOuterDisposeScope();
    }
}
