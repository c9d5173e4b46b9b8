using RetinaNet.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Inference;

/// <summary>The k largest values of each row of a [R, N] tensor by radix selection, in a few passes over the row
/// that each read it once: per pass a 256-bin histogram of the next 8 bits of the values' order-preserving keys,
/// among the values that still tie with the k-th on the bits fixed so far, until the k-th largest value itself is
/// known; then the values above it and the first of those equal to it (lowest index first, so the result is
/// deterministic) are written out in index order and sorted. For P3's 11 M logits per image this replaces
/// a selection that libtorch's top-k does in many more passes. Each thread reads 16 consecutive values (16-byte loads
/// where the row allows), and a chunk with nothing to write skips the last pass (bench/NOTES.md).</summary>
public static class TopKKernel
{
    const int Chunk = 4096, Threads = 256, Bins = 256;

    public static bool CanRun(Tensor x) =>
        x.device_type == DeviceType.CUDA && x.dim() == 2 && x.is_contiguous() && x.shape[1] <= int.MaxValue
        && x.dtype is ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16 && CudaKernels.Available;

    static readonly string Source = CudaKernels.ValueAccess + CudaSource.Load("TopKKernel.cu");

    /// <summary>Values (as float32) and indices of the <paramref name="k"/> largest entries of each row, in descending
    /// order, ties by lower index.</summary>
    public static (Tensor Values, Tensor Indices) Run(Tensor x, int k)
    {
        using var scope = NewDisposeScope();
        int device = x.device.index < 0 ? 0 : x.device.index;
        long rows = x.shape[0], n = x.shape[1];
        if (k < 1 || k > n) throw new ArgumentOutOfRangeException(nameof(k), $"k = {k} for rows of {n}");
        string type = CudaKernels.TypeSuffix(x);
        int chunks = (int)((n + Chunk - 1) / Chunk);
        // bf16 keys are float32 keys with 16 zero low bits: two 8-bit passes fix them
        int[] shifts = x.dtype == ScalarType.BFloat16 ? [24, 16] : [24, 16, 8, 0];
        var prefix = zeros(rows, dtype: ScalarType.Int32, device: x.device);
        using var wanted = k.ToScalar();
        var remaining = full(rows, wanted, dtype: ScalarType.Int32, device: x.device);
        var hist = zeros(shifts.Length, rows, Bins, dtype: ScalarType.Int32, device: x.device);
        var histogram = CudaKernels.Get(Source, $"topk_histogram_{type}", device);
        var choose = CudaKernels.Get(Source, "topk_choose", device);
        int aligned = Aligned(x) ? 1 : 0;
        for (int pass = 0; pass < shifts.Length; pass++)
        {
            var h = hist[pass];
            histogram.Launch((chunks, (int)rows), Threads, 0, x, n, aligned, prefix, shifts[pass], h);
            choose.Launch((int)rows, Bins, 0, h, prefix, remaining, shifts[pass]);
        }
        var above = empty(rows, chunks, dtype: ScalarType.Int32, device: x.device);
        var equal = empty(rows, chunks, dtype: ScalarType.Int32, device: x.device);
        CudaKernels.Get(Source, $"topk_count_{type}", device).Launch((chunks, (int)rows), Threads, 0, x, n, aligned,
            prefix, chunks, above, equal);
        var aboveBefore = (above.cumsum(1, type: ScalarType.Int32) - above).contiguous();
        var equalBefore = (equal.cumsum(1, type: ScalarType.Int32) - equal).contiguous();
        var values = empty(rows, k, dtype: ScalarType.Float32, device: x.device);
        var indices = empty(rows, k, dtype: ScalarType.Int64, device: x.device);
        CudaKernels.Get(Source, $"topk_collect_{type}", device).Launch((chunks, (int)rows), Threads, 0,
            x, n, aligned, prefix, remaining, k, chunks, above, equal, aboveBefore, equalBefore, values, indices);
        // collected in index order: a stable descending sort leaves ties by lower index
        var (sortedValues, order) = values.sort(dim: 1, descending: true, stable: true);
        return (sortedValues.MoveToOuterDisposeScope(), indices.gather(1, order).MoveToOuterDisposeScope());
    }

    /// <summary>Whether every row starts on a 16-byte boundary, so its runs of 16 values load 16 bytes at a
    /// time.</summary>
    static bool Aligned(Tensor x)
    {
        long size = x.element_size();
        return x.shape[1] * size % 16 == 0 && (long)TensorMemory.DataPointer(x) % 16 == 0;
    }
}
