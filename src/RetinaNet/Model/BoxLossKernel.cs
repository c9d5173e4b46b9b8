using RetinaNet.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Model;

/// <summary>The smooth-L1 box loss of <see cref="DetectionLoss"/> over foreground anchors in one pass over each level's
/// box deltas where the head wrote them ([B, A·4, H, W], NCHW or NHWC, autocast dtype), loss and derivative together
/// (see <see cref="PerLevelLoss"/>). The tensor-op version reorders and concatenates the levels, casts to float32 and
/// makes ~20 small passes forward and backward.</summary>
public static class BoxLossKernel
{
    public static bool CanRun(Tensor[] levels) => FocalLossKernel.CanRun(levels);

    static readonly string Source = CudaKernels.ValueAccess + PerLevelLoss.Prelude + """

        // Element (b, a*4 + k, y, x) of a level: anchor offset + (a*H + y)*W + x of image b, target delta k of that anchor.
        #define BOX_KERNEL(NAME, LOAD, STORE)                                                                               \
        extern "C" __global__ void box_loss_##NAME(const void* x, void* grad, const long long* labels, const float* targets,\
                                                   unsigned per_image, int nhwc, int height, int width, long long offset,   \
                                                   long long anchors, float beta, float* partial)                           \
        {                                                                                                                   \
            LEVEL_LOSS_LOOP(STORE,                                                                                          \
                unsigned long long anchor = b * anchors + offset + (unsigned long long)(ch >> 2) * hw + pixel;              \
                if (labels[anchor] > 0)                                                                                     \
                {                                                                                                           \
                    float d = LOAD(x, base + r) - targets[anchor * 4 + (ch & 3)], ad = fabsf(d);                            \
                    if (ad >= beta) { loss = ad - 0.5f * beta; g = d > 0.0f ? 1.0f : -1.0f; }                               \
                    else { loss = 0.5f * (ad * ad) / beta; g = d / beta; }                                                  \
                })                                                                                                          \
        }

        EACH_VALUE_TYPE(BOX_KERNEL)
        """;

    /// <summary>Σ smooth L1 (ODTK's beta) over every level's deltas [B, A·4, H, W] against target deltas [B, N, 4] at
    /// foreground anchors (labels [B, N] &gt; 0), a float32 scalar whose gradient flows to the deltas.</summary>
    public static Tensor Sum(Tensor[] levels, Tensor labels, Tensor targets, double beta = 0.11)
    {
        using var scope = NewDisposeScope();
        var contiguousLabels = labels.to(ScalarType.Int64).contiguous();
        var contiguousTargets = targets.to(ScalarType.Float32).contiguous();
        return PerLevelLoss.Sum(levels, labels.shape[1], 4, (level, launch) =>
            CudaKernels.Get(Source, $"box_loss_{CudaKernels.TypeSuffix(level)}", launch.Device).Launch(launch.Grid, PerLevelLoss.Threads, 0,
                launch.X, launch.Grad, contiguousLabels, contiguousTargets, (int)(uint)launch.PerImage, launch.Nhwc ? 1 : 0, (int)launch.Height,
                (int)launch.Width, launch.Offset, launch.Anchors, (float)beta, launch.Partial)).MoveToOuterDisposeScope();
    }
}
