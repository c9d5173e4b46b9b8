using RetinaNet.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Model;

/// <summary>The sigmoid focal loss of <see cref="DetectionLoss"/> in one pass over each level's class logits, where
/// they lie ([B, A·C, H, W] as the head wrote them, NCHW or NHWC, in the autocast dtype): per element the loss and its
/// derivative are computed together; the loss is summed per thread block and the derivative stored for the backward
/// pass. The tensor-op version reorders the logits to [B, N, C], casts them to float32 and makes ~15 passes forward and
/// backward over the largest tensor of a training step (116 M elements at batch 8, 800×1216).
/// <para>Autograd sees <c>Σ x·G</c> with G the stored derivative (detached): its gradient is G, and its value is
/// swapped for the kernel's exact loss sum, so callers get ODTK's loss and its gradient.</para></summary>
public static class FocalLossKernel
{
    const int Chunk = 2048, Threads = 256;

    public static bool CanRun(Tensor[] levels) =>
        levels.Length > 0 && levels.All(l => l.device_type == DeviceType.CUDA && l.dim() == 4 && (l.is_contiguous() || Layouts.IsDenseNhwc(l))
            && l.dtype is ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16) && CudaKernels.Available;

    static readonly string Source = CudaKernels.ValueAccess + """

        // Element (b, a*C + c, y, x) of a level: anchor offset + (a*H + y)*W + x of image b, target 1 where that anchor's
        // label is c + 1, ignored where the label is negative.
        #define FOCAL_KERNEL(NAME, LOAD, STORE)                                                                            \
        extern "C" __global__ void focal_loss_##NAME(const void* x, void* grad, const long long* labels, unsigned per_image, \
                                                     int nhwc, int classes, int height, int width, long long offset,        \
                                                     long long anchors, float alpha, float gamma, float* partial)           \
        {                                                                                                                   \
            __shared__ float warp_sums[32];                                                                                 \
            int b = blockIdx.y, t = threadIdx.x;                                                                            \
            unsigned hw = (unsigned)height * width, channels = per_image / hw;                                              \
            unsigned start = blockIdx.x * 2048u, end = min(per_image, start + 2048u);                                       \
            unsigned long long base = (unsigned long long)b * per_image;                                                    \
            const long long* image_labels = labels + b * anchors + offset;                                                  \
            float sum = 0.0f;                                                                                               \
            for (unsigned r = start + t; r < end; r += blockDim.x)                                                          \
            {                                                                                                               \
                unsigned ch, pixel;                                                                                         \
                if (nhwc) { ch = r % channels; pixel = r / channels; } else { ch = r / hw; pixel = r % hw; }                \
                unsigned a = ch / classes, c = ch % classes;                                                                \
                long long label = image_labels[(unsigned long long)a * hw + pixel];                                         \
                float v = LOAD(x, base + r), loss = 0.0f, g = 0.0f;                                                        \
                if (label >= 0)                                                                                             \
                {                                                                                                           \
                    float p = 1.0f / (1.0f + expf(-v));                                                                     \
                    float sp = fmaxf(v, 0.0f) + log1pf(expf(-fabsf(v)));  /* softplus(v) = BCE against 0 */                \
                    if (label == (long long)c + 1)                                                                          \
                    {                                                                                                       \
                        float q = 1.0f - p, spn = sp - v;                 /* softplus(-v) = BCE against 1 */                \
                        float w = alpha * powf(q, gamma);                                                                   \
                        loss = w * spn;                                                                                     \
                        g = -w * (gamma * p * spn + q);                                                                     \
                    }                                                                                                       \
                    else                                                                                                    \
                    {                                                                                                       \
                        float w = (1.0f - alpha) * powf(p, gamma);                                                          \
                        loss = w * sp;                                                                                      \
                        g = w * (gamma * (1.0f - p) * sp + p);                                                              \
                    }                                                                                                       \
                }                                                                                                           \
                STORE(grad, base + r, g);                                                                                   \
                sum += loss;                                                                                                \
            }                                                                                                               \
            for (int o = 16; o > 0; o >>= 1) sum += __shfl_down_sync(0xffffffffu, sum, o);                                 \
            if ((t & 31) == 0) warp_sums[t >> 5] = sum;                                                                     \
            __syncthreads();                                                                                                \
            if (t == 0)                                                                                                     \
            {                                                                                                               \
                float s = 0.0f;                                                                                             \
                for (int w = 0; w < (int)(blockDim.x >> 5); w++) s += warp_sums[w];                                         \
                partial[(unsigned long long)b * gridDim.x + blockIdx.x] = s;                                                \
            }                                                                                                               \
        }

        FOCAL_KERNEL(f32, load_f32, store_f32)
        FOCAL_KERNEL(bf16, load_bf16, store_bf16)
        FOCAL_KERNEL(f16, load_f16, store_f16)
        """;

    /// <summary>Σ focal loss over every level's logits [B, A·C, H, W] against per-anchor labels [B, N] (0 background,
    /// c + 1 class c, negative ignored; anchors level after level, (a, y, x) within a level), a float32 scalar whose
    /// gradient flows to the logits.</summary>
    public static Tensor Sum(Tensor[] levels, Tensor labels, int classes, double alpha = 0.25, double gamma = 2)
    {
        using var scope = NewDisposeScope();
        int device = levels[0].device.index < 0 ? 0 : levels[0].device.index;
        var contiguousLabels = labels.to(ScalarType.Int64).contiguous();
        long anchors = labels.shape[1], offset = 0;
        Tensor? total = null, surrogate = null;
        foreach (var x in levels)
        {
            long batch = x.shape[0], channels = x.shape[1], h = x.shape[2], w = x.shape[3], perImage = channels * h * w;
            if (perImage > uint.MaxValue - Chunk) throw new ArgumentException($"a level of {perImage} logits per image is beyond the fused focal loss");
            bool nhwc = !x.is_contiguous();
            string type = CudaKernels.TypeSuffix(x);
            int blocks = (int)((perImage + Chunk - 1) / Chunk);
            var grad = empty_like(x); // same strides as x (NCHW or NHWC)
            var partial = empty(batch, blocks, dtype: ScalarType.Float32, device: x.device);
            var detached = x.detach();
            CudaKernels.Get(Source, $"focal_loss_{type}", device).Launch((blocks, (int)batch), Threads, 0,
                detached, grad, contiguousLabels, (int)(uint)perImage, nhwc ? 1 : 0, classes, (int)h, (int)w, offset, anchors, (float)alpha, (float)gamma, partial);
            offset += channels / classes * h * w;
            var levelSum = partial.sum();
            total = total is null ? levelSum : total + levelSum;
            var flatX = nhwc ? x.permute(0, 2, 3, 1).reshape(-1) : x.reshape(-1);
            var flatG = nhwc ? grad.permute(0, 2, 3, 1).reshape(-1) : grad.reshape(-1);
            var dot = flatX.dot(flatG).to(ScalarType.Float32);
            surrogate = surrogate is null ? dot : surrogate + dot;
        }
        if (offset != anchors) throw new ArgumentException($"the levels hold {offset} anchors per image, the labels {anchors}");
        // value: the exact sum; gradient: the stored derivatives
        return (surrogate! - surrogate!.detach() + total!).MoveToOuterDisposeScope();
    }
}
