using RetinaNet.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Model;

/// <summary>The smooth-L1 box loss of <see cref="DetectionLoss"/> over foreground anchors in one pass over each
/// level's box deltas where the head wrote them ([B, A·V, H, W], V = 4, or 6 for rotated boxes; NCHW or NHWC, autocast
/// dtype), loss and derivative
/// together (see <see cref="PerLevelLoss"/>). The tensor-op version reorders and concatenates the levels, casts to
/// float32 and makes ~20 small passes forward and backward.</summary>
public static class BoxLossKernel
{
    public static bool CanRun(Tensor[] levels) => FocalLossKernel.CanRun(levels);

    static readonly string Source =
        CudaKernels.ValueAccess + PerLevelLoss.Prelude + CudaSource.Load("BoxLossKernel.cu");

    /// <summary>Σ smooth L1 (ODTK's beta) over every level's deltas [B, A·V, H, W] against target deltas [B, N, V] at
    /// foreground anchors (labels [B, N] &gt; 0), a float32 scalar whose gradient flows to the deltas.</summary>
    public static Tensor Sum(Tensor[] levels, Tensor labels, Tensor targets, double beta = 0.11)
    {
        using var scope = NewDisposeScope();
        var contiguousLabels = labels.to(ScalarType.Int64).contiguous();
        var contiguousTargets = targets.to(ScalarType.Float32).contiguous();
        int values = (int)targets.shape[2];
        return PerLevelLoss.Sum(levels, labels.shape[1], values, (level, launch) =>
            CudaKernels.Get(Source, $"box_loss_{CudaKernels.TypeSuffix(level)}", launch.Device).Launch(launch.Grid,
                PerLevelLoss.Threads, 0,
                launch.X, launch.Grad, contiguousLabels, contiguousTargets, (int)(uint)launch.PerImage, launch.Nhwc ? 1
                    : 0, (int)launch.Height,
                (int)launch.Width, launch.Offset, launch.Anchors, values, (float)beta,
                    launch.Partial)).MoveToOuterDisposeScope();
    }
}
