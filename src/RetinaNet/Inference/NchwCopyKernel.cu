// Channels-last 16-bit values [B, H, W, C] copied to NCHW [B, C, H, W]: per image the [HW, C] matrix transposed
// through 32×32 tiles in shared memory, so that both the reads (along C) and the writes (along HW) are coalesced.
// With a bias (bias_* kernels), bias[c] is added on the way as libtorch adds a convolution's bias in 16 bits: in
// float, rounded once. Blocks of 32×8 threads; grid (HW/32, C/32, B), rounded up.
#define NCHW_COPY(NAME, ADD)                                                                                        \
extern "C" __global__ void NAME(const unsigned short* x, unsigned short* out, const unsigned short* bias,           \
                                int channels, long long hw)                                                         \
{                                                                                                                   \
    __shared__ unsigned short tile[32][33];                                                                         \
    long long p0 = (long long)blockIdx.x * 32, image = blockIdx.z;                                                  \
    int c0 = blockIdx.y * 32, tx = threadIdx.x, ty = threadIdx.y;                                                   \
    const unsigned short* in = x + image * hw * channels;                                                           \
    unsigned short* o = out + image * hw * channels;                                                                \
    for (int j = ty; j < 32; j += 8)                                                                                \
    {                                                                                                               \
        long long p = p0 + j;                                                                                       \
        int c = c0 + tx;                                                                                            \
        if (p < hw && c < channels) tile[j][tx] = ADD(in[p * channels + c], bias, c);                               \
    }                                                                                                               \
    __syncthreads();                                                                                                \
    for (int j = ty; j < 32; j += 8)                                                                                \
    {                                                                                                               \
        int c = c0 + j;                                                                                             \
        long long p = p0 + tx;                                                                                      \
        if (p < hw && c < channels) o[(long long)c * hw + p] = tile[tx][j];                                         \
    }                                                                                                               \
}

#define AS_IS(v, bias, c) (v)
#define PLUS_BF16(v, bias, c) to_bf16(__fadd_rn(half_bf16(v), half_bf16(bias[c])))
#define PLUS_F16(v, bias, c) to_f16(__fadd_rn(half_f16(v), half_f16(bias[c])))
NCHW_COPY(nchw_copy16, AS_IS)
NCHW_COPY(nchw_copy_bias_bf16, PLUS_BF16)
NCHW_COPY(nchw_copy_bias_f16, PLUS_F16)
