
// Any layout: element i's channel is i % C (NHWC) or (i / HW) % C (NCHW).
#define AFFINE_KERNEL(NAME, LOAD, STORE)                                                                           \
extern "C" __global__ void affine_relu_##NAME(const void* x, void* out, const void* residual, const float* scale,   \
                                              const float* shift, unsigned long long count, int channels,           \
                                              unsigned long long hw, int nhwc, int relu)                            \
{                                                                                                                   \
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < count;               \
         i += (unsigned long long)gridDim.x * blockDim.x)                                                           \
    {                                                                                                               \
        int c = nhwc ? (int)(i % channels) : (int)((i / hw) % channels);                                            \
        float v = LOAD(x, i) * scale[c] + shift[c];                                                                 \
        if (residual) v += LOAD(residual, i);                                                                       \
        if (relu) v = fmaxf(v, 0.0f);                                                                               \
        STORE(out, i, v);                                                                                           \
    }                                                                                                               \
}

// NHWC, 16-bit values, C a multiple of 8: 8 consecutive channels per 16-byte load.
#define AFFINE_KERNEL8(NAME, HALF, ROUND)                                                                          \
extern "C" __global__ void affine_relu8_##NAME(const uint4* x, uint4* out, const uint4* residual, const float* scale, \
                                               const float* shift, unsigned long long vectors, int channels, int relu) \
{                                                                                                                   \
    for (unsigned long long v = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; v < vectors;            \
         v += (unsigned long long)gridDim.x * blockDim.x)                                                           \
    {                                                                                                               \
        uint4 data = x[v], extra = make_uint4(0, 0, 0, 0);                                                          \
        if (residual) extra = residual[v];                                                                          \
        int c0 = (int)((v * 8) % channels);                                                                         \
        unsigned short* h = (unsigned short*)&data;                                                                 \
        const unsigned short* r = (const unsigned short*)&extra;                                                    \
        _Pragma("unroll")                                                                                           \
        for (int j = 0; j < 8; j++)                                                                                 \
        {                                                                                                           \
            float f = HALF(h[j]) * scale[c0 + j] + shift[c0 + j];                                                   \
            if (residual) f += HALF(r[j]);                                                                          \
            if (relu) f = fmaxf(f, 0.0f);                                                                           \
            h[j] = ROUND(f);                                                                                        \
        }                                                                                                           \
        out[v] = data;                                                                                              \
    }                                                                                                               \
}

// Backward: g = grad · [y > 0] (ReLU) ; grad_x = g · scale[c] ; grad_residual = g.
#define AFFINE_BACKWARD(NAME, LOAD, STORE)                                                                         \
extern "C" __global__ void affine_relu_backward_##NAME(const void* grad, const void* y, const float* scale,         \
                                                       void* grad_x, void* grad_residual, unsigned long long count, \
                                                       int channels, unsigned long long hw, int nhwc, int relu)     \
{                                                                                                                   \
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < count;               \
         i += (unsigned long long)gridDim.x * blockDim.x)                                                           \
    {                                                                                                               \
        int c = nhwc ? (int)(i % channels) : (int)((i / hw) % channels);                                            \
        float g = LOAD(grad, i);                                                                                    \
        if (relu && !(LOAD(y, i) > 0.0f)) g = 0.0f;                                                                 \
        STORE(grad_x, i, g * scale[c]);                                                                             \
        if (grad_residual) STORE(grad_residual, i, g);                                                              \
    }                                                                                                               \
}

#define AFFINE_BACKWARD8(NAME, HALF, ROUND)                                                                        \
extern "C" __global__ void affine_relu_backward8_##NAME(const uint4* grad, const uint4* y, const float* scale,      \
                                                        uint4* grad_x, uint4* grad_residual,                        \
                                                        unsigned long long vectors, int channels, int relu)         \
{                                                                                                                   \
    for (unsigned long long v = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; v < vectors;            \
         v += (unsigned long long)gridDim.x * blockDim.x)                                                           \
    {                                                                                                               \
        uint4 g4 = grad[v], y4 = relu ? y[v] : make_uint4(0, 0, 0, 0), gx, gr;                                      \
        int c0 = (int)((v * 8) % channels);                                                                         \
        const unsigned short* gh = (const unsigned short*)&g4;                                                      \
        const unsigned short* yh = (const unsigned short*)&y4;                                                      \
        unsigned short* xh = (unsigned short*)&gx;                                                                  \
        unsigned short* rh = (unsigned short*)&gr;                                                                  \
        _Pragma("unroll")                                                                                           \
        for (int j = 0; j < 8; j++)                                                                                 \
        {                                                                                                           \
            float g = HALF(gh[j]);                                                                                  \
            if (relu && !(HALF(yh[j]) > 0.0f)) g = 0.0f;                                                            \
            xh[j] = ROUND(g * scale[c0 + j]);                                                                       \
            rh[j] = ROUND(g);                                                                                       \
        }                                                                                                           \
        grad_x[v] = gx;                                                                                             \
        if (grad_residual) grad_residual[v] = gr;                                                                   \
    }                                                                                                               \
}

AFFINE_BACKWARD(f32, load_f32, store_f32)
AFFINE_BACKWARD(bf16, load_bf16, store_bf16)
AFFINE_BACKWARD(f16, load_f16, store_f16)
AFFINE_BACKWARD8(bf16, half_bf16, to_bf16)
AFFINE_BACKWARD8(f16, half_f16, to_f16)

AFFINE_KERNEL(f32, load_f32, store_f32)
AFFINE_KERNEL(bf16, load_bf16, store_bf16)
AFFINE_KERNEL(f16, load_f16, store_f16)
AFFINE_KERNEL8(bf16, half_bf16, to_bf16)
AFFINE_KERNEL8(f16, half_f16, to_f16)