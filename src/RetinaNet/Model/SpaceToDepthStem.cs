using RetinaNet.Native;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RetinaNet.Model;

/// <summary>A ResNet stem (7×7 convolution of stride 2 over 3 channels, its frozen norm, a ReLU) for inference on a
/// GPU as the same sum rearranged: the input cut into 2×2 blocks of 12 channels (zero-padded to 16) by our kernel, then
/// a 4×4 convolution of stride 1 with the norm folded in and the ReLU fused (<see cref="FusedConvolution"/>). With 3
/// input channels cuDNN pads the input itself and runs a slow few-channel kernel, and the norm + ReLU is a pass of its
/// own; 16 channels take its tensor-core engines (bench/NOTES.md). Output (y, x) reads input rows 2y − 3 … 2y + 3,
/// which are blocks y − 2 … y + 1: tap t = 2·ky + dy of the 8-tap row is the 7×7 kernel's row t − 1 (t = 0 is
/// zero), and the block input carries two blocks of zeros before and one after.</summary>
public sealed class SpaceToDepthStem : IDisposable
{
    const int Threads = 256, BlockChannels = 16;

    static readonly string Source = CudaSource.Load("SpaceToDepthStem.cu");

    readonly FusedConvolution conv;

    /// <summary>Whether <paramref name="stem"/> is the 7×7 / 2 / 3 convolution this rearranges.</summary>
    public static bool Fits(Conv2d stem) =>
        stem.weight is { } w && w.shape.SequenceEqual(new long[] { w.shape[0], 3, 7, 7 }) && stem.groups == 1
        && stem.stride.All(s => s == 2) && stem.padding is { } p && p.All(v => v == 3)
        && stem.dilation.All(d => d == 1);

    /// <summary><paramref name="stem"/> with <paramref name="norm"/> folded in, stored in <paramref name="dtype"/>
    /// (bf16 or fp16) channels-last.</summary>
    public SpaceToDepthStem(Conv2d stem, FrozenBatchNorm2d norm, ScalarType dtype)
    {
        if (!Fits(stem)) throw new ArgumentException("takes a 7×7 convolution of stride 2 and padding 3 over RGB");
        using var scope = NewDisposeScope();
        var (weight, bias) = FrozenBatchNorm2d.Fold(stem, norm);
        conv = new FusedConvolution((PackWeight(weight).DetachFromDisposeScope(), bias.DetachFromDisposeScope()),
            [1, 1], [0, 0], [1, 1], dtype, channelsLast: true);
    }

    /// <summary>A 7×7 kernel [O, 3, 7, 7] as the 4×4 kernel [O, 16, 4, 4] over 2×2 blocks: channel (dy·2 + dx)·3 + c,
    /// tap (ky, kx) is the 7×7 tap (2·ky + dy − 1, 2·kx + dx − 1), zero outside it and in channels 12..15.</summary>
    public static Tensor PackWeight(Tensor weight)
    {
        using var scope = NewDisposeScope();
        long outputs = weight.shape[0];
        var taps = nn.functional.pad(weight, [1, 0, 1, 0]); // [O, 3, 8, 8]: tap t holds row t − 1
        var blocks = taps.view(outputs, 3, 4, 2, 4, 2).permute(0, 3, 5, 1, 2, 4).reshape(outputs, 12, 4, 4);
        return nn.functional.pad(blocks, [0, 0, 0, 0, 0, BlockChannels - 12]).MoveToOuterDisposeScope();
    }

    /// <summary>Dense NHWC bf16/fp16 RGB on a GPU, even height and width, no gradient wanted.</summary>
    public static bool CanRun(Tensor x) =>
        x.device_type == DeviceType.CUDA && x.dtype is ScalarType.BFloat16 or ScalarType.Float16
        && x.shape.Length == 4 && x.shape[1] == 3 && x.shape[2] % 2 == 0 && x.shape[3] % 2 == 0
        && Layouts.IsDenseNhwc(x) && x.storage_offset() == 0 && !(is_grad_enabled() && x.requires_grad)
        && CudaKernels.Available;

    /// <summary>ReLU(norm(conv(x))) as the stem computes it; null where it cannot run here.</summary>
    public Tensor? TryRun(Tensor x)
    {
        if (!CanRun(x)) return null;
        using var blocks = Blocks(x);
        return conv.TryRun(blocks, relu: true, null);
    }

    /// <summary>x [B, 3, H, W] (dense NHWC) as its 2×2 blocks [B, 16, H/2 + 3, W/2 + 3] (dense NHWC), the padding the
    /// 4×4 convolution needs included.</summary>
    public static Tensor Blocks(Tensor x)
    {
        if (!CanRun(x)) throw new ArgumentException("takes dense NHWC bf16/fp16 RGB of even size on a GPU");
        long batch = x.shape[0], height = x.shape[2], width = x.shape[3];
        long outHeight = height / 2 + 3, outWidth = width / 2 + 3;
        using var nhwc = empty([batch, outHeight, outWidth, BlockChannels], x.dtype, x.device);
        var output = nhwc.permute(0, 3, 1, 2);
        long count = batch * outHeight * outWidth;
        int blocks = CudaKernels.GridStrideBlocks(count, Threads);
        int device = x.device.index < 0 ? 0 : x.device.index;
        CudaKernels.Get(Source, "space_to_depth16", device).Launch(blocks, Threads, 0, x, output, (int)height,
            (int)width, (int)outHeight, (int)outWidth, count);
        return output;
    }

    public void Dispose() => conv.Dispose();
}
