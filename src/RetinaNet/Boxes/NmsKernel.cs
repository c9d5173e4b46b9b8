using RetinaNet.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Boxes;

/// <summary><see cref="BatchedNms.Run"/>'s exact greedy class-aware NMS as two CUDA kernels with no host wait (so it
/// also runs inside a CUDA graph): the overlap bits of every pair of score-sorted candidates, 64 to a word (what
/// torchvision's CUDA NMS computes), then per image one thread block walks the candidates in order, keeping each one
/// no kept box suppresses, until <c>maxDetections</c> are kept. The walk resolves 64 candidates at a time in one
/// thread's registers and spreads each kept box's suppressions over the block's threads.</summary>
public static class NmsKernel
{
    /// <summary>Past this many candidates per image the overlap bits (K²/8 bytes per image) are not worth it: use
    /// <see cref="BatchedNms.Run"/>.</summary>
    public const long MaxCandidates = 16384;

    /// <summary>Up to this many kept boxes, rotated candidates are resolved against the list of kept boxes
    /// (<c>nms_kept_list_rotated</c>) instead of through every pair's overlap bits.</summary>
    public const int MaxKeptList = 512;

    const int KeptListThreads = 256;

    public static bool CanRun(Tensor scores) => scores.device_type == DeviceType.CUDA
        && scores.shape[1] <= MaxCandidates && CudaKernels.Available;

    static readonly string Source = CudaSource.Load("RotatedIou.cuh") + CudaSource.Load("NmsKernel.cu");

    /// <summary>Same contract and result as <see cref="BatchedNms.Run"/>, on a CUDA device; boxes [B, K, 8] are
    /// rotated boxes' corners (exact <see cref="RotatedIou"/>, as <see cref="HostNms"/> on the CPU).</summary>
    public static NmsResult Run(Tensor scores, Tensor boxes, Tensor classes, Tensor? valid, double iouThreshold,
        int maxDetections)
    {
        using var scope = NewDisposeScope();
        int device = scores.device.index < 0 ? 0 : scores.device.index;
        var sorted = BatchedNms.Sorted.From(scores, boxes, classes, valid);
        long batch = sorted.Batch, k = sorted.K;
        int words = (int)((k + 63) / 64);
        var sortedBoxes = sorted.Boxes.contiguous();
        var sortedClasses = sorted.Classes.contiguous();
        var validCount = sorted.ValidCount.to(ScalarType.Int64).contiguous();
        long width = boxes.shape[2];
        var keep = empty(batch, maxDetections, dtype: ScalarType.Int64, device: scores.device);
        var count = empty(batch, dtype: ScalarType.Int64, device: scores.device);
        if (width == 8 && maxDetections <= MaxKeptList)
            CudaKernels.Get(Source, "nms_kept_list_rotated", device).Launch((int)batch, KeptListThreads,
                maxDetections * (sizeof(long) + 12 * sizeof(float)),
                sortedBoxes, sortedClasses, validCount, (int)k, maxDetections, iouThreshold, keep, count);
        else
        {
            var bits = empty(batch, k, words, dtype: ScalarType.Int64, device: scores.device);
            CudaKernels.Get(Source, width == 8 ? "nms_overlap_bits_rotated" : "nms_overlap_bits",
                device).Launch((words, words, (int)batch), 64, 0,
                sortedBoxes, sortedClasses, validCount, (int)k, words, iouThreshold, bits);
            CudaKernels.Get(Source, "nms_walk", device).Launch((int)batch, 128, words * sizeof(ulong),
                bits, validCount, (int)k, words, maxDetections, keep, count);
        }

        var filled = keep >= Of(0);
        var at = keep.clamp_min(Of(0));
        var result = new NmsResult(
            sorted.Scores.gather(1, at).masked_fill(~filled, Of(0)),
            sortedBoxes.gather(1,
                at.unsqueeze(-1).expand(batch, maxDetections, width)).masked_fill(~filled.unsqueeze(-1), Of(0)),
            sortedClasses.gather(1, at).masked_fill(~filled, Of(0)),
            sorted.Order.gather(1, at).masked_fill(~filled, Of(-1)),
            count);
        foreach (var t in new[] { result.Scores, result.Boxes, result.Classes, result.Indices, result.Count })
            t.MoveToOuterDisposeScope();
        return result;
    }
}
