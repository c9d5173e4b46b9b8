using RetinaNet.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Model;

/// <summary>What the fused head losses (<see cref="FocalLossKernel"/>, <see cref="BoxLossKernel"/>) share: each level's
/// output [B, A·K, H, W] (NCHW or NHWC, any float dtype) is read where the head wrote it, in chunks of
/// <see cref="Chunk"/> elements per thread block; the kernel stores each element's derivative in a tensor of the
/// same layout and one partial sum per block. Autograd sees <c>Σ x·G</c> with G the stored derivative (detached): its
/// gradient is G, and its value is swapped for the kernel's exact sum.</summary>
static class PerLevelLoss
{
    public const int Chunk = 2048, Threads = 256;

    /// <summary>CUDA C the loss kernels start with: the chunk size, the instantiation per value type, an element's
    /// channel and pixel, a block-wide sum written by thread 0, and the loop around each kernel's per-element code.</summary>
    public static readonly string Prelude = $"#define CHUNK {Chunk}u\n" + """
        #define EACH_VALUE_TYPE(KERNEL) KERNEL(f32, load_f32, store_f32) KERNEL(bf16, load_bf16, store_bf16) KERNEL(f16, load_f16, store_f16)

        // Element r of one image's level output, [A*K, H, W] (NCHW) or [H, W, A*K] (NHWC): its channel and pixel.
        __device__ __forceinline__ void level_element(unsigned r, unsigned channels, unsigned hw, int nhwc, unsigned& ch, unsigned& pixel)
        {
            if (nhwc) { ch = r % channels; pixel = r / channels; } else { ch = r / hw; pixel = r % hw; }
        }

        __device__ __forceinline__ void block_sum(float sum, float* out)
        {
            __shared__ float warp_sums[32];
            for (int o = 16; o > 0; o >>= 1) sum += __shfl_down_sync(0xffffffffu, sum, o);
            if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x >> 5] = sum;
            __syncthreads();
            if (threadIdx.x == 0)
            {
                float s = 0.0f;
                for (int w = 0; w < (int)(blockDim.x >> 5); w++) s += warp_sums[w];
                *out = s;
            }
        }

        // The body of a level's loss kernel: a block's chunk of image b's level output, element r at (ch, pixel); the
        // element's code (the macro's rest) sets loss and g, g is stored at r and the losses summed into partial.
        #define LEVEL_LOSS_LOOP(STORE, ...)                                                                                 \
            int b = blockIdx.y;                                                                                             \
            unsigned hw = (unsigned)height * width, channels = per_image / hw;                                              \
            unsigned start = blockIdx.x * CHUNK, end = min(per_image, start + CHUNK);                                       \
            unsigned long long base = (unsigned long long)b * per_image;                                                    \
            float sum = 0.0f;                                                                                               \
            for (unsigned r = start + threadIdx.x; r < end; r += blockDim.x)                                                \
            {                                                                                                               \
                unsigned ch, pixel;                                                                                         \
                level_element(r, channels, hw, nhwc, ch, pixel);                                                            \
                float loss = 0.0f, g = 0.0f;                                                                                \
                __VA_ARGS__                                                                                                 \
                STORE(grad, base + r, g);                                                                                   \
                sum += loss;                                                                                                \
            }                                                                                                               \
            block_sum(sum, partial + (unsigned long long)b * gridDim.x + blockIdx.x);

        """;

    /// <summary>One level's launch: the detached values, the derivative to fill, a [B, blocks] partial-sum buffer, and
    /// where the level's anchors start among the labels' N.</summary>
    public readonly record struct Launch(Tensor X, Tensor Grad, Tensor Partial, (int Blocks, int Batch) Grid, int Device,
        long PerImage, bool Nhwc, long Height, long Width, long Offset, long Anchors);

    /// <param name="anchors">anchors per image over all levels (the labels' N).</param>
    /// <param name="perAnchor">channels per anchor (classes, or 4 box deltas).</param>
    public static Tensor Sum(Tensor[] levels, long anchors, int perAnchor, Action<Tensor, Launch> launch)
    {
        using var scope = NewDisposeScope();
        long offset = 0;
        Tensor? total = null, surrogate = null;
        foreach (var x in levels)
        {
            long batch = x.shape[0], channels = x.shape[1], h = x.shape[2], w = x.shape[3], perImage = channels * h * w;
            if (perImage > uint.MaxValue - Chunk) throw new ArgumentException($"a level of {perImage} outputs per image is beyond the fused losses");
            bool nhwc = !x.is_contiguous();
            int blocks = (int)((perImage + Chunk - 1) / Chunk);
            var grad = empty_like(x); // same strides as x (NCHW or NHWC)
            var partial = empty(batch, blocks, dtype: ScalarType.Float32, device: x.device);
            int device = x.device.index < 0 ? 0 : x.device.index;
            launch(x, new Launch(x.detach(), grad, partial, (blocks, (int)batch), device, perImage, nhwc, h, w, offset, anchors));
            offset += channels / perAnchor * h * w;
            var levelSum = partial.sum();
            total = total is null ? levelSum : total + levelSum;
            var flatX = nhwc ? x.permute(0, 2, 3, 1).reshape(-1) : x.reshape(-1);
            var flatG = nhwc ? grad.permute(0, 2, 3, 1).reshape(-1) : grad.reshape(-1);
            var dot = flatX.dot(flatG).to(ScalarType.Float32);
            surrogate = surrogate is null ? dot : surrogate + dot;
        }
        if (offset != anchors) throw new ArgumentException($"the levels hold {offset} anchors per image, the labels {anchors}");
        return (surrogate! - surrogate!.detach() + total!).MoveToOuterDisposeScope();
    }
}
