using RetinaNet.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Model;

/// <summary>Inference's frozen batch norm, residual add and ReLU after a convolution as one pass over its output, in
/// place: y = max(x·scale[c] + shift[c] (+ residual), 0). libtorch makes that two or three passes (addcmul, add_,
/// relu_), each reading and writing the whole activation; at batch 8 and 800×1216 ResNet50's activations are ~3.5 GB
/// in bf16. NHWC bf16/fp16 activations (what `infer` runs) go 8 channels per 16-byte load.</summary>
public static class AffineReluKernel
{
    const int Threads = 256, MaxBlocks = 65535;

    /// <summary>Benchmarks turn it off to compare with libtorch's passes.</summary>
    public static bool Enabled { get; set; } = true;

    public static bool CanRun(Tensor x, Tensor? residual) =>
        Enabled && x.device_type == DeviceType.CUDA && x.dim() == 4 && (x.is_contiguous() || Layouts.IsDenseNhwc(x))
        && x.dtype is ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16
        && (residual is null || SameLayout(x, residual)) && CudaKernels.Available;

    static readonly string Source = CudaKernels.ValueAccess + """

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
        """;

    /// <summary>x ← max(x·scale + shift (+ residual), 0) in place (ReLU only when <paramref name="relu"/>), or into
    /// <paramref name="output"/> (x's layout); scale and shift float32 [C] on x's device.</summary>
    public static Tensor Apply(Tensor x, Tensor scale, Tensor shift, Tensor? residual, bool relu, Tensor? output = null)
    {
        output ??= x;
        var (name, vectorised, blocks, count) = Plan(x, "affine_relu");
        KernelArg extra = residual is null ? (KernelArg)0L : (KernelArg)residual;
        var kernel = CudaKernels.Get(Source, name, Device(x));
        if (vectorised) kernel.Launch(blocks, Threads, 0, x, output, extra, scale, shift, count, (int)x.shape[1], relu ? 1 : 0);
        else kernel.Launch(blocks, Threads, 0, x, output, extra, scale, shift, count, (int)x.shape[1], x.shape[2] * x.shape[3], x.is_contiguous() ? 0 : 1, relu ? 1 : 0);
        return output;
    }

    /// <summary>The gradients of <see cref="Apply"/> from the gradient of its output y: into x (scaled, masked by
    /// y &gt; 0 under ReLU) and into the residual (masked only). <paramref name="grad"/> must share y's layout.</summary>
    public static void Backward(Tensor grad, Tensor y, Tensor scale, bool relu, Tensor gradX, Tensor? gradResidual)
    {
        var (name, vectorised, blocks, count) = Plan(y, "affine_relu_backward");
        KernelArg residual = gradResidual is null ? (KernelArg)0L : (KernelArg)gradResidual;
        var kernel = CudaKernels.Get(Source, name, Device(y));
        if (vectorised) kernel.Launch(blocks, Threads, 0, grad, y, scale, gradX, residual, count, (int)y.shape[1], relu ? 1 : 0);
        else kernel.Launch(blocks, Threads, 0, grad, y, scale, gradX, residual, count, (int)y.shape[1], y.shape[2] * y.shape[3], y.is_contiguous() ? 0 : 1, relu ? 1 : 0);
    }

    public static bool SameLayout(Tensor x, Tensor r) =>
        r.dtype == x.dtype && r.device_type == x.device_type && r.device.index == x.device.index && r.shape.SequenceEqual(x.shape)
        && Enumerable.Range(0, (int)x.dim()).All(i => r.stride(i) == x.stride(i));

    static int Device(Tensor x) => x.device.index < 0 ? 0 : x.device.index;

    /// <summary>NHWC 16-bit activations with C a multiple of 8 go 8 values per thread step; the rest one by one.</summary>
    static (string Name, bool Vectorised, int Blocks, long Count) Plan(Tensor x, string stem)
    {
        string type = CudaKernels.TypeSuffix(x);
        bool vectorised = !x.is_contiguous() && x.dtype != ScalarType.Float32 && x.shape[1] % 8 == 0;
        long count = vectorised ? x.numel() / 8 : x.numel();
        int blocks = (int)Math.Max(1, Math.Min((count + Threads - 1) / Threads, MaxBlocks));
        return ($"{stem}{(vectorised ? "8" : "")}_{type}", vectorised, blocks, count);
    }
}
