using RetinaNet.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Boxes;

/// <summary><see cref="TargetAssigner"/>'s matching as one kernel: a thread per (image, anchor) walks that image's
/// boxes (staged in shared memory) once, keeping the best IoU with an object, its first index and the largest
/// coverage by a crowd region, then writes the label and the encoded deltas. The tensor-op version makes ~25 passes
/// over a [B, N, M] IoU tensor (194 k anchors × 8 images × tens of boxes per training step). Same float32 arithmetic
/// in the same order as the tensor ops (compiled without FMA contraction), so labels match exactly.</summary>
public static class AssignKernel
{
    const int Threads = 256;
    /// <summary>Boxes per image that fit the kernel's shared memory (6 floats each); more take the tensor
    /// ops.</summary>
    public const int MaxBoxes = 2048;

    public static bool CanRun(Tensor anchors, Tensor targets) => Fits(anchors, targets, MaxBoxes);

    /// <summary>Rotated boxes per image that fit the shared memory (10 floats each); more take the tensor
    /// ops.</summary>
    public const int MaxRotatedBoxes = 1024;

    public static bool CanRunRotated(Tensor anchorCorners, Tensor targets) =>
        Fits(anchorCorners, targets, MaxRotatedBoxes);

    static bool Fits(Tensor anchors, Tensor targets, int maxBoxes) =>
        anchors.device_type == DeviceType.CUDA && targets.shape[1] > 0 && targets.shape[1] <= maxBoxes
        && CudaKernels.Available;

    static readonly string Source = CudaSource.Load("RotatedIou.cuh") + CudaSource.Load("AssignKernel.cu");

    /// <param name="anchors">[N, 4] float32 on the GPU.</param>
    /// <param name="targets">[B, M, 5] (x, y, w, h, class) as <see cref="TargetAssigner.Assign"/> takes them.</param>
    public static AnchorTargets Run(Tensor anchors, Tensor targets, double background, double foreground)
    {
        using var scope = NewDisposeScope();
        var a = anchors.to(ScalarType.Float32).contiguous();
        var t = targets.to(ScalarType.Float32).to(anchors.device).contiguous();
        long batch = t.shape[0], n = a.shape[0], m = t.shape[1];
        var labels = empty(batch, n, dtype: ScalarType.Int64, device: a.device);
        var deltas = empty(batch, n, 4, dtype: ScalarType.Float32, device: a.device);
        int device = a.device.index < 0 ? 0 : a.device.index;
        CudaKernels.Get(Source, "assign_targets", device).Launch(((int)((n + Threads - 1) / Threads), (int)batch),
            Threads, (int)(m * 6 * sizeof(float)),
            a, t, n, (int)m, (float)background, (float)foreground, (float)TargetAssigner.CrowdIoA, TargetAssigner.Crowd,
                labels, deltas);
        return new AnchorTargets(labels.MoveToOuterDisposeScope(), deltas.MoveToOuterDisposeScope());
    }

    /// <summary><see cref="TargetAssigner.AssignRotated"/>'s labels [B, N] and matched box indices [B, N] from
    /// anchor corners [N, 8] and areas [N], box corners [B·M, 8], areas [B, M] and classes [B, M].</summary>
    public static (Tensor Labels, Tensor Matches) MatchRotated(Tensor anchorCorners, Tensor anchorAreas,
        Tensor boxCorners, Tensor boxAreas, Tensor classes, double background, double foreground)
    {
        using var scope = NewDisposeScope();
        var device = anchorCorners.device;
        Tensor Floats(Tensor x) => x.to(ScalarType.Float32).to(device).contiguous();
        long batch = boxAreas.shape[0], n = anchorCorners.shape[0], m = boxAreas.shape[1];
        var labels = empty(batch, n, dtype: ScalarType.Int64, device: device);
        var matches = empty(batch, n, dtype: ScalarType.Int64, device: device);
        CudaKernels.Get(Source, "assign_targets_rotated", device.index < 0 ? 0 : device.index).Launch(
            ((int)((n + Threads - 1) / Threads), (int)batch), Threads, (int)(m * 10 * sizeof(float)),
            Floats(anchorCorners), Floats(anchorAreas), Floats(boxCorners), Floats(boxAreas), Floats(classes), n,
            (int)m, (float)background, (float)foreground, (float)TargetAssigner.CrowdIoA, TargetAssigner.Crowd,
            labels, matches);
        return (labels.MoveToOuterDisposeScope(), matches.MoveToOuterDisposeScope());
    }
}
