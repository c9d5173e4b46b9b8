using RetinaNet.Model;
using RetinaNet.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Inference;

/// <summary>A contiguous NCHW copy of channels-last bf16/fp16 values (the class logits decode reads in NCHW order),
/// transposed through shared-memory tiles, optionally adding a per-channel bias on the way (the class head's last
/// bias, which the head then need not add in a pass of its own). libtorch's copy of the permuted view reads one
/// strided value per thread and was one of the larger passes of a batch-8 call (bench/NOTES.md).</summary>
public static class NchwCopyKernel
{
    static readonly string Source = CudaKernels.ValueAccess + CudaSource.Load("NchwCopyKernel.cu");

    public static bool CanRun(Tensor x) =>
        x.device_type == DeviceType.CUDA && x.dtype is ScalarType.BFloat16 or ScalarType.Float16
        && Layouts.IsDenseNhwc(x) && x.storage_offset() == 0 && x.shape[0] <= 65535 && CudaKernels.Available;

    /// <summary>x [B, C, H, W] (dense channels-last) as a new contiguous tensor of the same values, plus
    /// <paramref name="bias"/> [C] (x's dtype) where given, each sum rounded as libtorch's add rounds it.</summary>
    public static Tensor Run(Tensor x, Tensor? bias = null)
    {
        if (!CanRun(x)) throw new ArgumentException("takes dense channels-last bf16/fp16 values on a GPU");
        long batch = x.shape[0], channels = x.shape[1], hw = x.shape[2] * x.shape[3];
        if (bias is not null && (bias.dtype != x.dtype || !AtenOps.SameDevice(bias, x) || bias.numel() != channels
            || !bias.is_contiguous()))
            throw new ArgumentException(
                $"the bias must be {channels} contiguous values of the input's dtype and device");
        var output = empty(x.shape, x.dtype, x.device);
        if (output.numel() == 0) return output;
        int device = x.device.index < 0 ? 0 : x.device.index;
        var kernel = bias is null ? CudaKernels.Get(Source, "nchw_copy16", device)
            : CudaKernels.Get(Source, $"nchw_copy_bias_{CudaKernels.TypeSuffix(x)}", device);
        KernelArg biasArg = bias is null ? 0L : bias;
        kernel.Launch(((int)((hw + 31) / 32), (int)((channels + 31) / 32), (int)batch),
            (32, 8), 0, x, output, biasArg, (int)channels, hw);
        return output;
    }
}
