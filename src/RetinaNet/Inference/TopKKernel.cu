#define CHUNK 4096
#define THREADS 256
#define RUN 16 // CHUNK / THREADS: each thread reads 16 consecutive values of its chunk
#define FULL 0xffffffffu
__device__ __forceinline__ unsigned key_of(float f)
{
    unsigned u = __float_as_uint(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// A thread's 16 values (positions first .. first + 15 of the row at base), zero past end: as 16-byte loads where
// the row is aligned to them and the run is whole, else one at a time. Returns how many lie before end.
#define VALUES16(NAME, LOAD, WIDTH)                                                                                 \
__device__ __forceinline__ int values16_##NAME(const void* x, long long base, long long first, long long end,     \
                                               int aligned, float* v)                                              \
{                                                                                                                   \
    long long left = end - first;                                                                                   \
    int count = left <= 0 ? 0 : (left >= RUN ? RUN : (int)left);                                                    \
    if (aligned && count == RUN)                                                                                    \
    {                                                                                                               \
        const uint4* p = (const uint4*)((const char*)x + (base + first) * WIDTH);                                   \
        _Pragma("unroll")                                                                                           \
        for (int q = 0; q < RUN * WIDTH / 16; q++)                                                                  \
        {                                                                                                           \
            uint4 data = p[q];                                                                                      \
            _Pragma("unroll")                                                                                       \
            for (int j = 0; j < 16 / WIDTH; j++) v[q * (16 / WIDTH) + j] = LOAD(&data, j);                          \
        }                                                                                                           \
    }                                                                                                               \
    else                                                                                                            \
    {                                                                                                               \
        _Pragma("unroll")                                                                                           \
        for (int j = 0; j < RUN; j++) v[j] = j < count ? LOAD(x, base + first + j) : 0.0f;                         \
    }                                                                                                               \
    return count;                                                                                                   \
}

VALUES16(f32, load_f32, 4)
VALUES16(bf16, load_bf16, 2)
VALUES16(f16, load_f16, 2)

// Per block (chunk × row), per pass: a 256-bin histogram of the next 8 bits of the keys among those that still tie
// with the k-th on the bits fixed so far. Each thread adds its runs of equal bins (the logits of a level crowd into
// few bins, so a run is most of a thread's values) to the block's bins.
#define TOPK_KERNELS(NAME, MASK)                                                                                    \
extern "C" __global__ void topk_histogram_##NAME(const void* x, long long n, int aligned, const unsigned* prefix,   \
                                                 int shift, unsigned* hist)                                         \
{                                                                                                                   \
    __shared__ unsigned bins[256];                                                                                  \
    int row = blockIdx.y, t = threadIdx.x;                                                                          \
    bins[t] = 0;                                                                                                    \
    __syncthreads();                                                                                                \
    unsigned p = prefix[row];                                                                                       \
    long long start = (long long)blockIdx.x * CHUNK, end = min(n, start + CHUNK), base = (long long)row * n;        \
    float v[RUN];                                                                                                   \
    int count = values16_##NAME(x, base, start + t * RUN, end, aligned, v);                                        \
    unsigned run = 256, length = 0;                                                                                 \
    _Pragma("unroll")                                                                                               \
    for (int j = 0; j < RUN; j++)                                                                                   \
    {                                                                                                               \
        unsigned bin = 256, key = key_of(v[j]) & MASK;                                                              \
        if (j < count && (((unsigned long long)(key ^ p)) >> (shift + 8)) == 0) bin = (key >> shift) & 255u;        \
        if (bin != run)                                                                                             \
        {                                                                                                           \
            if (run != 256) atomicAdd(&bins[run], length);                                                          \
            run = bin; length = 0;                                                                                  \
        }                                                                                                           \
        length++;                                                                                                   \
    }                                                                                                               \
    if (run != 256) atomicAdd(&bins[run], length);                                                                  \
    __syncthreads();                                                                                                \
    if (bins[t]) atomicAdd(&hist[row * 256 + t], bins[t]);                                                          \
}                                                                                                                   \
                                                                                                                    \
/* per chunk: how many keys lie above the k-th key and how many equal it */                                        \
extern "C" __global__ void topk_count_##NAME(const void* x, long long n, int aligned, const unsigned* prefix,       \
                                             int chunks, int* above, int* equal)                                    \
{                                                                                                                   \
    __shared__ unsigned warp_counts[THREADS / 32];                                                                  \
    int row = blockIdx.y, t = threadIdx.x, lane = t & 31;                                                           \
    unsigned threshold = prefix[row];                                                                               \
    long long start = (long long)blockIdx.x * CHUNK, end = min(n, start + CHUNK), base = (long long)row * n;        \
    float v[RUN];                                                                                                   \
    int count = values16_##NAME(x, base, start + t * RUN, end, aligned, v);                                        \
    unsigned packed = 0; /* above << 16 | equal: a chunk's counts stay below 2^16 */                              \
    _Pragma("unroll")                                                                                               \
    for (int j = 0; j < RUN; j++)                                                                                   \
    {                                                                                                               \
        unsigned key = key_of(v[j]) & MASK;                                                                         \
        if (j < count) packed += key > threshold ? 0x10000u : (key == threshold ? 1u : 0u);                         \
    }                                                                                                               \
    _Pragma("unroll")                                                                                               \
    for (int o = 16; o > 0; o >>= 1) packed += __shfl_down_sync(FULL, packed, o);                                  \
    if (lane == 0) warp_counts[t >> 5] = packed;                                                                    \
    __syncthreads();                                                                                                \
    if (t == 0)                                                                                                     \
    {                                                                                                               \
        unsigned total = 0;                                                                                         \
        for (int w = 0; w < THREADS / 32; w++) total += warp_counts[w];                                             \
        above[row * chunks + blockIdx.x] = (int)(total >> 16);                                                      \
        equal[row * chunks + blockIdx.x] = (int)(total & 0xffffu);                                                  \
    }                                                                                                               \
}                                                                                                                   \
                                                                                                                    \
/* writes the chunk's keys above the k-th (all of them are taken) and, of those equal to it, the first ones by     \
   index while ties are left; in index order, each at its chunk's offset plus its rank within the chunk. A chunk   \
   with nothing to write returns before reading. */                                                                 \
extern "C" __global__ void topk_collect_##NAME(const void* x, long long n, int aligned, const unsigned* prefix,     \
                                               const int* remaining, int k, int chunks, const int* above,          \
                                               const int* equal, const int* above_before, const int* equal_before, \
                                               float* values, long long* indices)                                  \
{                                                                                                                   \
    __shared__ unsigned warp_totals[THREADS / 32];                                                                  \
    int row = blockIdx.y, t = threadIdx.x, lane = t & 31, warp = t >> 5;                                            \
    int at = row * chunks + blockIdx.x;                                                                             \
    int ties = remaining[row], strictly = k - ties, run_above = above_before[at], run_equal = equal_before[at];    \
    if (above[at] == 0 && (equal[at] == 0 || run_equal >= ties)) return;                                            \
    unsigned threshold = prefix[row];                                                                               \
    long long start = (long long)blockIdx.x * CHUNK, end = min(n, start + CHUNK), base = (long long)row * n;        \
    long long first = start + t * RUN;                                                                              \
    float v[RUN];                                                                                                   \
    int count = values16_##NAME(x, base, first, end, aligned, v);                                                  \
    unsigned packed = 0;                                                                                            \
    _Pragma("unroll")                                                                                               \
    for (int j = 0; j < RUN; j++)                                                                                   \
    {                                                                                                               \
        unsigned key = key_of(v[j]) & MASK;                                                                         \
        if (j < count) packed += key > threshold ? 0x10000u : (key == threshold ? 1u : 0u);                         \
    }                                                                                                               \
    /* exclusive scan of the packed counts over the block, in thread (= index) order */                            \
    unsigned inclusive = packed;                                                                                    \
    _Pragma("unroll")                                                                                               \
    for (int o = 1; o < 32; o <<= 1)                                                                                \
    {                                                                                                               \
        unsigned y = __shfl_up_sync(FULL, inclusive, o);                                                            \
        if (lane >= o) inclusive += y;                                                                              \
    }                                                                                                               \
    if (lane == 31) warp_totals[warp] = inclusive;                                                                  \
    __syncthreads();                                                                                                \
    unsigned exclusive = inclusive - packed;                                                                        \
    for (int w = 0; w < warp; w++) exclusive += warp_totals[w];                                                     \
    int pos = run_above + (int)(exclusive >> 16), rank = run_equal + (int)(exclusive & 0xffffu);                    \
    _Pragma("unroll")                                                                                               \
    for (int j = 0; j < RUN; j++)                                                                                   \
    {                                                                                                               \
        unsigned key = key_of(v[j]) & MASK;                                                                         \
        if (j >= count) continue;                                                                                   \
        if (key > threshold)                                                                                        \
        {                                                                                                           \
            if (pos < strictly)                                                                                     \
            {                                                                                                       \
                values[(long long)row * k + pos] = v[j];                                                            \
                indices[(long long)row * k + pos] = first + j;                                                      \
            }                                                                                                       \
            pos++;                                                                                                  \
        }                                                                                                           \
        else if (key == threshold)                                                                                  \
        {                                                                                                           \
            if (rank < ties)                                                                                        \
            {                                                                                                       \
                values[(long long)row * k + strictly + rank] = v[j];                                                \
                indices[(long long)row * k + strictly + rank] = first + j;                                          \
            }                                                                                                       \
            rank++;                                                                                                 \
        }                                                                                                           \
    }                                                                                                               \
}

// bf16 keys keep their 16 significant bits only (a negative value's complemented key would otherwise carry 16
// set low bits that its two 8-bit passes never fix)
TOPK_KERNELS(f32, 0xffffffffu)
TOPK_KERNELS(bf16, 0xffff0000u)
TOPK_KERNELS(f16, 0xffffffffu)

// After a histogram pass: fix the next 8 bits of the k-th largest key and how many of the values sharing those bits
// are still to be taken. A block of 256 threads per row: suffix sums of the bins, and the one bin where they first
// reach what is still wanted.
extern "C" __global__ void topk_choose(const unsigned* hist, unsigned* prefix, int* remaining, int shift)
{
    __shared__ unsigned sums[256];
    int row = blockIdx.x, d = threadIdx.x;
    unsigned need = (unsigned)remaining[row];
    sums[d] = hist[row * 256 + d];
    __syncthreads();
    for (int o = 1; o < 256; o <<= 1)
    {
        unsigned add = d + o < 256 ? sums[d + o] : 0;
        __syncthreads();
        sums[d] += add;
        __syncthreads();
    }
    unsigned from = sums[d], after = d == 255 ? 0 : sums[d + 1];
    if (from >= need && after < need)
    {
        prefix[row] |= ((unsigned)d) << shift;
        remaining[row] = (int)(need - after);
    }
}
