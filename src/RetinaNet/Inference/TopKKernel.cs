using RetinaNet.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Inference;

/// <summary>The k largest values of each row of a [R, N] tensor by radix selection, in a few passes over the row
/// that each read it once: per pass a 256-bin histogram of the next 8 bits of the values' order-preserving keys,
/// among the values that still tie with the k-th on the bits fixed so far, until the k-th largest value itself is
/// known; then the values above it and the first of those equal to it (lowest index first, so the result is
/// deterministic) are written out in index order and sorted. For P3's 11 M logits per image this replaces
/// a selection that libtorch's top-k does in many more passes.</summary>
public static class TopKKernel
{
    const int Chunk = 4096, Threads = 256;

    public static bool CanRun(Tensor x) =>
        x.device_type == DeviceType.CUDA && x.dim() == 2 && x.is_contiguous() && x.shape[1] <= int.MaxValue
        && x.dtype is ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16 && CudaKernels.Available;

    static readonly string Source = CudaKernels.ValueAccess + """
        #define CHUNK 4096
        #define FULL 0xffffffffu
        __device__ __forceinline__ unsigned key_of(float f) { unsigned u = __float_as_uint(f); return (u & 0x80000000u) ? ~u : (u | 0x80000000u); }

        #define TOPK_KERNELS(NAME, LOAD, MASK)                                                                                 \
        extern "C" __global__ void topk_histogram_##NAME(const void* x, long long n, const unsigned* prefix, int shift,      \
                                                         unsigned* hist)                                                    \
        {                                                                                                                   \
            __shared__ unsigned bins[256];                                                                                  \
            int row = blockIdx.y, t = threadIdx.x, lane = t & 31;                                                           \
            bins[t] = 0;                                                                                                    \
            __syncthreads();                                                                                                \
            unsigned p = prefix[row];                                                                                       \
            long long start = (long long)blockIdx.x * CHUNK, end = min(n, start + CHUNK), base = (long long)row * n;        \
            for (long long at = start; at < end; at += blockDim.x)                                                          \
            {                                                                                                               \
                long long i = at + t;                                                                                       \
                unsigned bin = 256;                                                                                         \
                if (i < end)                                                                                                \
                {                                                                                                           \
                    unsigned key = key_of(LOAD(x, base + i)) & MASK;                                                               \
                    if ((((unsigned long long)(key ^ p)) >> (shift + 8)) == 0) bin = (key >> shift) & 255u;                 \
                }                                                                                                           \
                unsigned peers = __match_any_sync(FULL, bin);                                                               \
                if (bin != 256 && lane == __ffs(peers) - 1) atomicAdd(&bins[bin], __popc(peers));                           \
            }                                                                                                               \
            __syncthreads();                                                                                                \
            if (bins[t]) atomicAdd(&hist[row * 256 + t], bins[t]);                                                          \
        }                                                                                                                   \
                                                                                                                            \
        extern "C" __global__ void topk_count_##NAME(const void* x, long long n, const unsigned* prefix, int chunks,         \
                                                     int* above, int* equal)                                                \
        {                                                                                                                   \
            __shared__ int a, e;                                                                                            \
            int row = blockIdx.y, t = threadIdx.x;                                                                          \
            if (t == 0) { a = 0; e = 0; }                                                                                   \
            __syncthreads();                                                                                                \
            unsigned threshold = prefix[row];                                                                               \
            long long start = (long long)blockIdx.x * CHUNK, end = min(n, start + CHUNK), base = (long long)row * n;        \
            int la = 0, le = 0;                                                                                             \
            for (long long i = start + t; i < end; i += blockDim.x)                                                         \
            {                                                                                                               \
                unsigned key = key_of(LOAD(x, base + i)) & MASK;                                                                   \
                la += key > threshold; le += key == threshold;                                                              \
            }                                                                                                               \
            if (la) atomicAdd(&a, la);                                                                                      \
            if (le) atomicAdd(&e, le);                                                                                      \
            __syncthreads();                                                                                                \
            if (t == 0) { above[row * chunks + blockIdx.x] = a; equal[row * chunks + blockIdx.x] = e; }                     \
        }                                                                                                                   \
                                                                                                                            \
        extern "C" __global__ void topk_collect_##NAME(const void* x, long long n, const unsigned* prefix,                   \
                                                       const int* remaining, int k, int chunks, const int* above_before,    \
                                                       const int* equal_before, float* values, long long* indices)          \
        {                                                                                                                   \
            __shared__ int warp_above[32], warp_equal[32];                                                                  \
            int row = blockIdx.y, t = threadIdx.x, lane = t & 31, warp = t >> 5, warps = blockDim.x >> 5;                   \
            unsigned threshold = prefix[row];                                                                               \
            int ties = remaining[row], strictly = k - ties;                                                                 \
            int run_above = above_before[row * chunks + blockIdx.x], run_equal = equal_before[row * chunks + blockIdx.x];  \
            long long start = (long long)blockIdx.x * CHUNK, end = min(n, start + CHUNK), base = (long long)row * n;        \
            unsigned lower = (1u << lane) - 1;                                                                              \
            for (long long at = start; at < end; at += blockDim.x)                                                          \
            {                                                                                                               \
                long long i = at + t;                                                                                       \
                float v = i < end ? LOAD(x, base + i) : 0.0f;                                                               \
                unsigned key = key_of(v) & MASK;                                                                                 \
                bool g = i < end && key > threshold, e = i < end && key == threshold;                                       \
                unsigned bg = __ballot_sync(FULL, g), be = __ballot_sync(FULL, e);                                          \
                if (lane == 0) { warp_above[warp] = __popc(bg); warp_equal[warp] = __popc(be); }                            \
                __syncthreads();                                                                                            \
                int og = run_above, oe = run_equal, tg = 0, te = 0;                                                         \
                for (int w = 0; w < warps; w++)                                                                             \
                {                                                                                                           \
                    if (w < warp) { og += warp_above[w]; oe += warp_equal[w]; }                                             \
                    tg += warp_above[w]; te += warp_equal[w];                                                               \
                }                                                                                                           \
                if (g)                                                                                                      \
                {                                                                                                           \
                    int pos = og + __popc(bg & lower);                                                                      \
                    if (pos < strictly) { values[(long long)row * k + pos] = v; indices[(long long)row * k + pos] = i; }    \
                }                                                                                                           \
                if (e)                                                                                                      \
                {                                                                                                           \
                    int r = oe + __popc(be & lower);                                                                        \
                    if (r < ties) { values[(long long)row * k + strictly + r] = v; indices[(long long)row * k + strictly + r] = i; } \
                }                                                                                                           \
                run_above += tg; run_equal += te;                                                                           \
                __syncthreads();                                                                                            \
            }                                                                                                               \
        }

        // bf16 keys keep their 16 significant bits only (a negative value's complemented key would otherwise carry 16
        // set low bits that its two 8-bit passes never fix)
        TOPK_KERNELS(f32, load_f32, 0xffffffffu)
        TOPK_KERNELS(bf16, load_bf16, 0xffff0000u)
        TOPK_KERNELS(f16, load_f16, 0xffffffffu)

        // After a histogram pass: fix the next 8 bits of the k-th largest key and how many of the values sharing
        // those bits are still to be taken.
        extern "C" __global__ void topk_choose(const unsigned* hist, unsigned* prefix, int* remaining, int shift)
        {
            int row = blockIdx.x;
            const unsigned* h = hist + row * 256;
            unsigned need = (unsigned)remaining[row], above = 0;
            for (int d = 255; d >= 0; d--)
            {
                if (above + h[d] >= need) { prefix[row] |= ((unsigned)d) << shift; remaining[row] = (int)(need - above); return; }
                above += h[d];
            }
        }
        """;

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
        var remaining = full(rows, k, dtype: ScalarType.Int32, device: x.device);
        var hist = zeros(shifts.Length, rows, 256, dtype: ScalarType.Int32, device: x.device);
        var histogram = CudaKernels.Get(Source, $"topk_histogram_{type}", device);
        var choose = CudaKernels.Get(Source, "topk_choose", device);
        for (int pass = 0; pass < shifts.Length; pass++)
        {
            var h = hist[pass];
            histogram.Launch((chunks, (int)rows), Threads, 0, x, n, prefix, shifts[pass], h);
            choose.Launch((int)rows, 1, 0, h, prefix, remaining, shifts[pass]);
        }
        var above = empty(rows, chunks, dtype: ScalarType.Int32, device: x.device);
        var equal = empty(rows, chunks, dtype: ScalarType.Int32, device: x.device);
        CudaKernels.Get(Source, $"topk_count_{type}", device).Launch((chunks, (int)rows), Threads, 0, x, n, prefix, chunks, above, equal);
        var aboveBefore = (above.cumsum(1, type: ScalarType.Int32) - above).contiguous();
        var equalBefore = (equal.cumsum(1, type: ScalarType.Int32) - equal).contiguous();
        var values = empty(rows, k, dtype: ScalarType.Float32, device: x.device);
        var indices = empty(rows, k, dtype: ScalarType.Int64, device: x.device);
        CudaKernels.Get(Source, $"topk_collect_{type}", device).Launch((chunks, (int)rows), Threads, 0,
            x, n, prefix, remaining, k, chunks, aboveBefore, equalBefore, values, indices);
        // collected in index order: a stable descending sort leaves ties by lower index
        var (sortedValues, order) = values.sort(dim: 1, descending: true, stable: true);
        return (sortedValues.MoveToOuterDisposeScope(), indices.gather(1, order).MoveToOuterDisposeScope());
    }
}
