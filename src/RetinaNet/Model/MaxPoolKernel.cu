
// Max pooling of NHWC 16-bit values, C a multiple of 8: one thread per output pixel and 8 consecutive channels,
// one 16-byte load per window tap. Taps outside the input are skipped (libtorch's -inf padding); NaN wins as in
// libtorch (a tap replaces the max where it is greater or NaN).
#define MAX_POOL8(NAME, HALF)                                                                                      \
extern "C" __global__ void max_pool8_##NAME(const uint4* x, uint4* out, unsigned long long vectors, int groups,      \
                                            int height, int width, int out_height, int out_width, int kernel,       \
                                            int stride, int padding)                                                \
{                                                                                                                   \
    for (unsigned long long v = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; v < vectors;            \
         v += (unsigned long long)gridDim.x * blockDim.x)                                                           \
    {                                                                                                               \
        int g = (int)(v % groups);                                                                                  \
        unsigned long long pixel = v / groups;                                                                      \
        int ox = (int)(pixel % out_width), oy = (int)((pixel / out_width) % out_height);                           \
        unsigned long long image = pixel / ((unsigned long long)out_width * out_height);                          \
        float best[8];                                                                                              \
        unsigned short kept[8];                                                                                     \
        _Pragma("unroll")                                                                                           \
        for (int j = 0; j < 8; j++) { best[j] = -__int_as_float(0x7f800000); kept[j] = 0; }                       \
        bool any = false;                                                                                           \
        for (int ky = 0; ky < kernel; ky++)                                                                         \
        {                                                                                                           \
            int y = oy * stride - padding + ky;                                                                     \
            if (y < 0 || y >= height) continue;                                                                     \
            for (int kx = 0; kx < kernel; kx++)                                                                     \
            {                                                                                                       \
                int xx = ox * stride - padding + kx;                                                                \
                if (xx < 0 || xx >= width) continue;                                                                \
                uint4 data = x[((image * height + y) * width + xx) * groups + g];                                   \
                const unsigned short* h = (const unsigned short*)&data;                                             \
                _Pragma("unroll")                                                                                   \
                for (int j = 0; j < 8; j++)                                                                         \
                {                                                                                                   \
                    float f = HALF(h[j]);                                                                           \
                    if (!any || f > best[j] || f != f) { best[j] = f; kept[j] = h[j]; }                             \
                }                                                                                                   \
                any = true;                                                                                         \
            }                                                                                                       \
        }                                                                                                           \
        uint4 result;                                                                                               \
        unsigned short* r = (unsigned short*)&result;                                                               \
        _Pragma("unroll")                                                                                           \
        for (int j = 0; j < 8; j++) r[j] = kept[j];                                                                 \
        out[v] = result;                                                                                            \
    }                                                                                                               \
}

MAX_POOL8(bf16, half_bf16)
MAX_POOL8(f16, half_f16)
