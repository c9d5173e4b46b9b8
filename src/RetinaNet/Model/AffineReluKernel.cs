using RetinaNet.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Model;

/// <summary>Inference's frozen batch norm, residual add and ReLU after a convolution as one pass over its output, in
/// place: y = max(x·scale[c] + shift[c] (+ residual), 0). libtorch makes that two or three passes (addcmul, add_,
/// relu_), each reading and writing the whole activation; at batch 8 and 800×1216 ResNet50's activations are ~3.5 GB
/// in bf16. NHWC bf16/fp16 activations (what `infer` runs) go 8 channels per 16-byte load.</summary>
public static class AffineReluKernel
{
    const int Threads = 256;

    public static bool CanRun(Tensor x, Tensor? residual) =>
        x.device_type == DeviceType.CUDA && x.dim() == 4 && (x.is_contiguous() || Layouts.IsDenseNhwc(x))
        && x.dtype is ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16
        && (residual is null || SameLayout(x, residual)) && CudaKernels.Available;

    static readonly string Source = CudaKernels.ValueAccess + CudaSource.Load("AffineReluKernel.cu");

    /// <summary>x ← max(x·scale + shift (+ residual), 0) in place (ReLU only when <paramref name="relu"/>), or into
    /// <paramref name="output"/> (x's layout); scale and shift float32 [C] on x's device.</summary>
    public static Tensor Apply(Tensor x, Tensor scale, Tensor shift, Tensor? residual, bool relu, Tensor? output = null)
    {
        output ??= x;
        var (type, vectorised, blocks, count) = Plan(x);
        KernelArg extra = residual is null ? (KernelArg)0L : (KernelArg)residual;
        var kernel = CudaKernels.Get(Source, vectorised ? $"affine_relu8_{type}" : $"affine_relu_{type}", Device(x));
        if (vectorised) kernel.Launch(blocks, Threads, 0, x, output, extra, scale, shift, count, (int)x.shape[1], relu
            ? 1 : 0);
        else kernel.Launch(blocks, Threads, 0, x, output, extra, scale, shift, count, (int)x.shape[1],
            x.shape[2] * x.shape[3], x.is_contiguous() ? 0 : 1, relu ? 1 : 0);
        return output;
    }

    /// <summary>The gradients of <see cref="Apply"/> from the gradient of its output y: into x (scaled, masked by y
    /// &gt; 0 under ReLU) and into the residual (masked only). <paramref name="grad"/> must share y's
    /// layout.</summary>
    public static void Backward(Tensor grad, Tensor y, Tensor scale, bool relu, Tensor gradX, Tensor? gradResidual)
    {
        var (type, vectorised, blocks, count) = Plan(y);
        KernelArg residual = gradResidual is null ? (KernelArg)0L : (KernelArg)gradResidual;
        var kernel = CudaKernels.Get(
            Source, vectorised ? $"affine_relu_backward8_{type}" : $"affine_relu_backward_{type}", Device(y));
        if (vectorised) kernel.Launch(blocks, Threads, 0, grad, y, scale, gradX, residual, count, (int)y.shape[1], relu
            ? 1 : 0);
        else kernel.Launch(blocks, Threads, 0, grad, y, scale, gradX, residual, count, (int)y.shape[1],
            y.shape[2] * y.shape[3], y.is_contiguous() ? 0 : 1, relu ? 1 : 0);
    }

    public static bool SameLayout(Tensor x, Tensor r) =>
        r.dtype == x.dtype && r.device_type == x.device_type && r.device.index == x.device.index
            && r.shape.SequenceEqual(x.shape)
        && Enumerable.Range(0, (int)x.dim()).All(i => r.stride(i) == x.stride(i));

    static int Device(Tensor x) => x.device.index < 0 ? 0 : x.device.index;

    /// <summary>NHWC 16-bit activations with C a multiple of 8 go 8 values per thread step; the rest one by
    /// one.</summary>
    static (string Type, bool Vectorised, int Blocks, long Count) Plan(Tensor x)
    {
        string type = CudaKernels.TypeSuffix(x);
        bool vectorised = !x.is_contiguous() && x.dtype != ScalarType.Float32 && x.shape[1] % 8 == 0;
        long count = vectorised ? x.numel() / 8 : x.numel();
        int blocks = CudaKernels.GridStrideBlocks(count, Threads);
        return (type, vectorised, blocks, count);
    }
}
