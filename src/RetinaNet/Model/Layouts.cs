using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Model;

/// <summary>Inference layouts without TorchSharp support for them: half-precision weights (no autocast casts on every
/// call, which cost more than they save at batch 1) and channels-last (NHWC) strides, which cuDNN's fastest
/// tensor-core convolutions want. Both change the module in place; training keeps fp32 NCHW weights (the flat
/// optimizer buffer owns them).</summary>
public static class Layouts
{
    /// <summary>Every 4-d parameter and buffer gets NHWC strides (same shape and values).</summary>
    public static void ToChannelsLast(nn.Module module)
    {
        using var noGrad = no_grad();
        foreach (var (_, p) in module.named_parameters())
            if (p.dim() == 4) p.set_(NhwcCopy(p));
    }

    public static Tensor NhwcCopy(Tensor x)
    {
        using var nhwc = x.permute(0, 2, 3, 1).contiguous();
        return nhwc.permute(0, 3, 1, 2);
    }

    /// <summary>NHWC strides over memory with no gaps: what our kernels take as channels-last.</summary>
    public static bool IsDenseNhwc(Tensor x) =>
        x.dim() == 4 && x.stride(1) == 1 && x.stride(3) == x.shape[1] && x.stride(2) == x.shape[1] * x.shape[3]
            && x.stride(0) == x.shape[1] * x.shape[2] * x.shape[3];

    public static bool IsChannelsLast(Tensor x) => x.dim() == 4 && x.stride(1) == 1 && x.stride(3) == x.shape[1];
}
