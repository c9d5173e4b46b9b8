using RetinaNet.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Model;

/// <summary>The FPN's top-down step for inference on a GPU, in one pass: a lateral convolution's output (run without
/// its bias) plus the bias plus the coarser level upsampled (nearest), written over the lateral output. libtorch runs
/// the bias add, the upsampling and the sum as three passes, the first of them a strided one over channels-last
/// values (bench/NOTES.md). The same values, bit for bit.</summary>
public static class FpnMergeKernel
{
    const int Threads = 256;

    static readonly string Source = CudaKernels.ValueAccess + CudaSource.Load("FpnMergeKernel.cu");

    /// <summary>Dense NHWC bf16/fp16 maps of the same batch and channels (a multiple of 8), a bias of theirs, on one
    /// GPU, no gradient wanted.</summary>
    public static bool CanRun(Tensor lateral, Tensor bias, Tensor coarse) =>
        lateral.device_type == DeviceType.CUDA && lateral.dtype is ScalarType.BFloat16 or ScalarType.Float16
        && coarse.dtype == lateral.dtype && bias.dtype == lateral.dtype && AtenOps.SameDevice(lateral, coarse)
        && AtenOps.SameDevice(bias, lateral) && Layouts.IsDenseNhwc(lateral) && Layouts.IsDenseNhwc(coarse)
        && lateral.storage_offset() == 0 && coarse.storage_offset() == 0 && bias.is_contiguous()
        && lateral.shape[0] == coarse.shape[0] && lateral.shape[1] == coarse.shape[1] && lateral.shape[1] % 8 == 0
        && bias.numel() == lateral.shape[1]
        && !(is_grad_enabled() && (lateral.requires_grad || coarse.requires_grad || bias.requires_grad))
        && CudaKernels.Available;

    /// <summary>lateral + bias + nearest-upsampled coarse, into <paramref name="lateral"/>, which it returns.</summary>
    public static Tensor RunInPlace(Tensor lateral, Tensor bias, Tensor coarse)
    {
        if (!CanRun(lateral, bias, coarse)) throw new ArgumentException("takes dense NHWC bf16/fp16 maps on a GPU");
        long batch = lateral.shape[0], channels = lateral.shape[1], height = lateral.shape[2], width = lateral.shape[3];
        long vectors = batch * height * width * channels / 8;
        if (vectors == 0) return lateral;
        int blocks = CudaKernels.GridStrideBlocks(vectors, Threads);
        int device = lateral.device.index < 0 ? 0 : lateral.device.index;
        // libtorch's scale for an output size without a scale factor: input / output, in float
        float scaleY = (float)coarse.shape[2] / height, scaleX = (float)coarse.shape[3] / width;
        CudaKernels.Get(Source, $"fpn_merge_{CudaKernels.TypeSuffix(lateral)}", device).Launch(blocks, Threads, 0,
            lateral, bias, coarse, vectors, (int)(channels / 8), (int)height, (int)width, (int)coarse.shape[2],
            (int)coarse.shape[3], scaleY, scaleX);
        return lateral;
    }
}
