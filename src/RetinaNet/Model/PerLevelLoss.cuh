#define EACH_VALUE_TYPE(KERNEL) KERNEL(f32, load_f32, store_f32) KERNEL(bf16, load_bf16, store_bf16) KERNEL(f16, load_f16, store_f16)

// Element r of one image's level output, [A*K, H, W] (NCHW) or [H, W, A*K] (NHWC): its channel and pixel.
__device__ __forceinline__ void level_element(unsigned r, unsigned channels, unsigned hw, int nhwc, unsigned& ch, unsigned& pixel)
{
    if (nhwc) { ch = r % channels; pixel = r / channels; } else { ch = r / hw; pixel = r % hw; }
}

__device__ __forceinline__ void block_sum(float sum, float* out)
{
    __shared__ float warp_sums[32];
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_down_sync(0xffffffffu, sum, o);
    if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x >> 5] = sum;
    __syncthreads();
    if (threadIdx.x == 0)
    {
        float s = 0.0f;
        for (int w = 0; w < (int)(blockDim.x >> 5); w++) s += warp_sums[w];
        *out = s;
    }
}

// The body of a level's loss kernel: a block's chunk of image b's level output, element r at (ch, pixel); the
// element's code (the macro's rest) sets loss and g, g is stored at r and the losses summed into partial.
#define LEVEL_LOSS_LOOP(STORE, ...)                                                                                 \
    int b = blockIdx.y;                                                                                             \
    unsigned hw = (unsigned)height * width, channels = per_image / hw;                                              \
    unsigned start = blockIdx.x * CHUNK, end = min(per_image, start + CHUNK);                                       \
    unsigned long long base = (unsigned long long)b * per_image;                                                    \
    float sum = 0.0f;                                                                                               \
    for (unsigned r = start + threadIdx.x; r < end; r += blockDim.x)                                                \
    {                                                                                                               \
        unsigned ch, pixel;                                                                                         \
        level_element(r, channels, hw, nhwc, ch, pixel);                                                            \
        float loss = 0.0f, g = 0.0f;                                                                                \
        __VA_ARGS__                                                                                                 \
        STORE(grad, base + r, g);                                                                                   \
        sum += loss;                                                                                                \
    }                                                                                                               \
    block_sum(sum, partial + (unsigned long long)b * gridDim.x + blockIdx.x);
