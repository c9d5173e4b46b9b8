// The FPN's top-down step on NHWC 16-bit values, C a multiple of 8, in place: lateral + bias[c] + coarse at the
// nearest source pixel, rounded as libtorch's two adds round (the convolution's bias add, then the sum with the
// upsampled map). The source pixel is libtorch's nearest index: min(floor(dst · in / out), in − 1) in float.
// One thread per pixel and 8 channels, 16-byte loads.
#define FPN_MERGE(NAME, HALF, TO)                                                                                   \
extern "C" __global__ void fpn_merge_##NAME(uint4* lateral, const unsigned short* bias, const uint4* coarse,         \
                                            unsigned long long vectors, int groups, int height, int width,          \
                                            int coarse_height, int coarse_width, float scale_y, float scale_x)      \
{                                                                                                                   \
    for (unsigned long long v = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; v < vectors;            \
         v += (unsigned long long)gridDim.x * blockDim.x)                                                           \
    {                                                                                                               \
        int g = (int)(v % groups);                                                                                  \
        unsigned long long pixel = v / groups;                                                                      \
        int x = (int)(pixel % width), y = (int)((pixel / width) % height);                                         \
        unsigned long long image = pixel / ((unsigned long long)width * height);                                  \
        int sy = min((int)floorf(y * scale_y), coarse_height - 1);                                                  \
        int sx = min((int)floorf(x * scale_x), coarse_width - 1);                                                   \
        uint4 l = lateral[v], t = coarse[((image * coarse_height + sy) * coarse_width + sx) * groups + g];           \
        const unsigned short* lh = (const unsigned short*)&l;                                                       \
        const unsigned short* th = (const unsigned short*)&t;                                                       \
        uint4 result;                                                                                               \
        unsigned short* r = (unsigned short*)&result;                                                               \
        _Pragma("unroll")                                                                                           \
        for (int j = 0; j < 8; j++)                                                                                 \
        {                                                                                                           \
            unsigned short biased = TO(__fadd_rn(HALF(lh[j]), HALF(bias[g * 8 + j])));                             \
            r[j] = TO(__fadd_rn(HALF(biased), HALF(th[j])));                                                        \
        }                                                                                                           \
        lateral[v] = result;                                                                                        \
    }                                                                                                               \
}

FPN_MERGE(bf16, half_bf16, to_bf16)
FPN_MERGE(f16, half_f16, to_f16)
