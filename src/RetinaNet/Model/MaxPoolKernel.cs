using RetinaNet.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Model;

/// <summary>Max pooling of NHWC bf16/fp16 activations without indices (inference, or a frozen stem), in one pass of
/// 16-byte loads, 8 channels per thread. libtorch's NHWC max-pool kernel reads one value at a time: at batch 8 the
/// stem's pooling was one of the larger passes of a call (bench/NOTES.md). Same values as libtorch's, NaN
/// included.</summary>
public static class MaxPoolKernel
{
    const int Threads = 256;

    static readonly string Source = CudaKernels.ValueAccess + CudaSource.Load("MaxPoolKernel.cu");

    public static bool CanRun(Tensor x) =>
        x.device_type == DeviceType.CUDA && x.dtype is ScalarType.BFloat16 or ScalarType.Float16
        && Layouts.IsDenseNhwc(x) && x.shape[1] % 8 == 0 && x.storage_offset() == 0
        && !(is_grad_enabled() && x.requires_grad) && CudaKernels.Available;

    /// <summary>max_pool2d(x, kernel, stride, padding) (square, no dilation, floor mode) into a new NHWC
    /// tensor.</summary>
    public static Tensor Run(Tensor x, int kernel, int stride, int padding)
    {
        if (!CanRun(x)) throw new ArgumentException("takes dense NHWC bf16/fp16 on a GPU, channels a multiple of 8");
        long batch = x.shape[0], channels = x.shape[1], height = x.shape[2], width = x.shape[3];
        long outHeight = (height + 2 * padding - kernel) / stride + 1;
        long outWidth = (width + 2 * padding - kernel) / stride + 1;
        using var nhwc = empty([batch, outHeight, outWidth, channels], x.dtype, x.device);
        var output = nhwc.permute(0, 3, 1, 2);
        long vectors = output.numel() / 8;
        int blocks = CudaKernels.GridStrideBlocks(vectors, Threads);
        int device = x.device.index < 0 ? 0 : x.device.index;
        CudaKernels.Get(Source, $"max_pool8_{CudaKernels.TypeSuffix(x)}", device).Launch(blocks, Threads, 0, x, output,
            vectors, (int)(channels / 8), (int)height, (int)width, (int)outHeight, (int)outWidth, kernel, stride,
            padding);
        return output;
    }
}
