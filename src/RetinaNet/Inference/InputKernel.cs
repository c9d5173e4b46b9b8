using RetinaNet.Data.Loading;
using RetinaNet.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Inference;

/// <summary>A batch's pixels on the device to a channels-last model's input in one pass: normalised, the padding
/// zeroed, in the model's dtype and NHWC. libtorch's way (<see cref="DeviceBatch.From"/>, a cast, an NHWC copy) took
/// eight passes over the batch, some of them strided (bench/NOTES.md). The same values, bit for bit.</summary>
public static class InputKernel
{
    const int Threads = 256;

    static readonly string Source = CudaKernels.ValueAccess + CudaSource.Load("InputKernel.cu");

    /// <summary>Whether the kernel takes <paramref name="pixels"/> (uint8 [B, 3, H, W], contiguous, on a GPU) for a
    /// model in <paramref name="dtype"/>.</summary>
    public static bool CanRun(Tensor pixels, ScalarType dtype) =>
        pixels.device_type == DeviceType.CUDA && pixels.dtype == ScalarType.Byte && pixels.dim() == 4
        && pixels.shape[1] == 3 && pixels.is_contiguous() && pixels.storage_offset() == 0
        && dtype is ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16 && CudaKernels.Available;

    /// <summary>The model's input [B, 3, H, W] with dense NHWC strides, in <paramref name="dtype"/>; each image's
    /// (height, width) in <paramref name="sizes"/> (int64 [B, 2]), zero beyond.</summary>
    public static Tensor Run(Tensor pixels, Tensor sizes, ScalarType dtype)
    {
        if (!CanRun(pixels, dtype)) throw new ArgumentException("takes contiguous uint8 [B, 3, H, W] on a GPU");
        long batch = pixels.shape[0], height = pixels.shape[2], width = pixels.shape[3];
        if (sizes.dtype != ScalarType.Int64 || !sizes.is_contiguous())
            throw new ArgumentException("takes the sizes as contiguous int64 [B, 2]");
        using var onDevice = sizes.to(pixels.device, non_blocking: true);
        using var nhwc = empty([batch, height, width, 3], dtype, pixels.device);
        var output = nhwc.permute(0, 3, 1, 2);
        long count = batch * height * width;
        if (count == 0) return output;
        int blocks = CudaKernels.GridStrideBlocks(count, Threads);
        int device = pixels.device.index < 0 ? 0 : pixels.device.index;
        var (mean, std) = (DeviceBatch.Mean, DeviceBatch.Std);
        CudaKernels.Get(Source, $"image_input_{CudaKernels.TypeSuffix(output)}", device).Launch(blocks, Threads, 0,
            pixels, output, onDevice, (int)height, (int)width, count, 1f / 255f, mean[0], mean[1], mean[2],
            std[0], std[1], std[2]);
        return output;
    }
}
