// A batch's uint8 RGB planes [B, 3, H, W] to the model's input: x / 255, minus the mean, over the std, zero beyond
// each image's size, as NHWC values [B, H, W, 3]. One thread per pixel. The float operations are libtorch's, one by
// one and explicitly rounded (no contraction into FMAs), so the values are its bits: x * (1 / 255) (libtorch
// multiplies by the reciprocal of a scalar divisor), then - mean, / std, * valid (a negative value times 0 is -0).
#define INPUT_KERNEL(NAME, STORE)                                                                                   \
extern "C" __global__ void image_input_##NAME(const unsigned char* x, void* out, const long long* sizes,            \
                                              int height, int width, unsigned long long pixels, float inverse,      \
                                              float m0, float m1, float m2, float s0, float s1, float s2)           \
{                                                                                                                   \
    unsigned long long plane = (unsigned long long)height * width;                                                 \
    for (unsigned long long p = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; p < pixels;             \
         p += (unsigned long long)gridDim.x * blockDim.x)                                                           \
    {                                                                                                               \
        unsigned long long image = p / plane, at = p % plane;                                                       \
        int y = (int)(at / width), xx = (int)(at % width);                                                          \
        float valid = (y < sizes[2 * image] && xx < sizes[2 * image + 1]) ? 1.0f : 0.0f;                            \
        const unsigned char* rgb = x + image * 3 * plane + at;                                                      \
        float m[3] = {m0, m1, m2}, s[3] = {s0, s1, s2};                                                             \
        _Pragma("unroll")                                                                                           \
        for (int c = 0; c < 3; c++)                                                                                 \
        {                                                                                                           \
            float v = __fmul_rn((float)rgb[c * plane], inverse);                                                    \
            v = __fmul_rn(__fdiv_rn(__fsub_rn(v, m[c]), s[c]), valid);                                              \
            STORE(out, p * 3 + c, v);                                                                               \
        }                                                                                                           \
    }                                                                                                               \
}

INPUT_KERNEL(f32, store_f32)
INPUT_KERNEL(bf16, store_bf16)
INPUT_KERNEL(f16, store_f16)
