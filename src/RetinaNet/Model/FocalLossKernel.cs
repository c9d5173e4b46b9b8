using RetinaNet.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Model;

/// <summary>The sigmoid focal loss of <see cref="DetectionLoss"/> in one pass over each level's class logits, where
/// they lie ([B, A·C, H, W] as the head wrote them, NCHW or NHWC, in the autocast dtype): per element the loss and its
/// derivative are computed together; the loss is summed per thread block and the derivative stored for the backward
/// pass. The tensor-op version reorders the logits to [B, N, C], casts them to float32 and makes ~15 passes forward
/// and backward over the largest tensor of a training step (116 M elements at batch 8, 800×1216). <para>Autograd sees
/// <c>Σ x·G</c> with G the stored derivative (detached): its gradient is G, and its value is swapped for the kernel's
/// exact loss sum, so callers get ODTK's loss and its gradient.</para></summary>
public static class FocalLossKernel
{
    public static bool CanRun(Tensor[] levels) =>
        levels.Length > 0
            && levels.All(l => l.device_type == DeviceType.CUDA && l.dim() == 4
            && (l.is_contiguous() || Layouts.IsDenseNhwc(l))
            && l.dtype is ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16) && CudaKernels.Available;

    static readonly string Source =
        CudaKernels.ValueAccess + PerLevelLoss.Prelude + CudaSource.Load("FocalLossKernel.cu");

    /// <summary>Σ focal loss over every level's logits [B, A·C, H, W] against per-anchor labels [B, N] (0 background,
    /// c + 1 class c, negative ignored; anchors level after level, (a, y, x) within a level), a float32 scalar whose
    /// gradient flows to the logits.</summary>
    public static Tensor Sum(Tensor[] levels, Tensor labels, int classes, double alpha = 0.25, double gamma = 2)
    {
        using var scope = NewDisposeScope();
        var contiguousLabels = labels.to(ScalarType.Int64).contiguous();
        return PerLevelLoss.Sum(levels, labels.shape[1], classes, (level, launch) =>
            CudaKernels.Get(Source, $"focal_loss_{CudaKernels.TypeSuffix(level)}", launch.Device).Launch(launch.Grid,
                PerLevelLoss.Threads, 0,
                launch.X, launch.Grad, contiguousLabels, (int)(uint)launch.PerImage, launch.Nhwc ? 1 : 0, classes,
                    (int)launch.Height,
                (int)launch.Width, launch.Offset, launch.Anchors, (float)alpha, (float)gamma,
                    launch.Partial)).MoveToOuterDisposeScope();
    }
}
