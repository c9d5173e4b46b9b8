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