using RetinaNet.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Model;

/// <summary>What the fused head losses (<see cref="FocalLossKernel"/>, <see cref="BoxLossKernel"/>) share: each
/// level's output [B, A·K, H, W] (NCHW or NHWC, any float dtype) is read where the head wrote it, in chunks of
/// <see cref="Chunk"/> elements per thread block; the kernel stores each element's derivative in a tensor of the same
/// layout and one partial sum per block. Autograd sees <c>Σ x·G</c> with G the stored derivative (detached): its
/// gradient is G, and its value is swapped for the kernel's exact sum.</summary>
static class PerLevelLoss
{
    public const int Chunk = 2048, Threads = 256;

    /// <summary>CUDA C the loss kernels start with: the chunk size (a #define prepended here, so <see cref="Chunk"/>
    /// is its one value), then PerLevelLoss.cuh: the instantiation per value type, an element's channel and pixel, a
    /// block-wide sum written by thread 0, and the loop around each kernel's per-element code.</summary>
    public static readonly string Prelude = $"#define CHUNK {Chunk}u\n" + CudaSource.Load("PerLevelLoss.cuh");

    /// <summary>One level's launch: the detached values, the derivative to fill, a [B, blocks] partial-sum buffer, and
    /// where the level's anchors start among the labels' N.</summary>
    public readonly record struct Launch(Tensor X, Tensor Grad, Tensor Partial, (int Blocks, int Batch) Grid,
        int Device,
        long PerImage, bool Nhwc, long Height, long Width, long Offset, long Anchors);

    /// <param name="anchors">anchors per image over all levels (the labels' N).</param>
    /// <param name="perAnchor">channels per anchor (classes, or the box deltas: 4, or 6 for rotated boxes).</param>
    public static Tensor Sum(Tensor[] levels, long anchors, int perAnchor, Action<Tensor, Launch> launch)
    {
        using var scope = NewDisposeScope();
        long offset = 0;
        Tensor? total = null, surrogate = null;
        foreach (var x in levels)
        {
            long batch = x.shape[0], channels = x.shape[1], h = x.shape[2], w = x.shape[3], perImage = channels * h * w;
            if (perImage > uint.MaxValue
                - Chunk) throw new ArgumentException($"a level of {perImage} outputs per image is beyond the fused "
                + "losses");
            bool nhwc = !x.is_contiguous();
            int blocks = (int)((perImage + Chunk - 1) / Chunk);
            var grad = empty_like(x); // same strides as x (NCHW or NHWC)
            var partial = empty(batch, blocks, dtype: ScalarType.Float32, device: x.device);
            int device = x.device.index < 0 ? 0 : x.device.index;
            launch(x,
                new Launch(x.detach(), grad, partial, (blocks, (int)batch), device, perImage, nhwc, h, w, offset,
                anchors));
            offset += channels / perAnchor * h * w;
            var levelSum = partial.sum();
            total = total is null ? levelSum : total.Plus(levelSum);
            var flatX = nhwc ? x.permute(0, 2, 3, 1).reshape(-1) : x.reshape(-1);
            var flatG = nhwc ? grad.permute(0, 2, 3, 1).reshape(-1) : grad.reshape(-1);
            var dot = flatX.dot(flatG).to(ScalarType.Float32);
            surrogate = surrogate is null ? dot : surrogate.Plus(dot);
        }
        if (offset != anchors) throw new ArgumentException($"the levels hold {offset} anchors per image, the labels "
            + $"{anchors}");
        return (surrogate! - surrogate!.detach()).Plus(total!).MoveToOuterDisposeScope();
    }
}
