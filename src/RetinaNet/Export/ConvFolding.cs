using RetinaNet.Model;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RetinaNet.Export;

/// <summary>A convolution with the frozen batch norm that follows it folded in: W' = W * s (per output channel),
/// b' = b * s + t, with y = x * s + t the norm's affine map. Computed in float64, rounded once to the export type.</summary>
public static class ConvFolding
{
    public static (Tensor Weight, Tensor Bias) Fold(Conv2d conv, FrozenBatchNorm2d? norm)
    {
        using var scope = NewDisposeScope();
        var weight = conv.weight!.detach().to(ScalarType.Float64);
        var bias = conv.bias is { } b ? b.detach().to(ScalarType.Float64) : zeros(weight.shape[0], ScalarType.Float64, weight.device);
        if (norm is not null)
        {
            var buffers = norm.named_buffers().ToDictionary(n => n.name, n => n.buffer.detach().to(ScalarType.Float64));
            var scale = buffers["weight"] * (buffers["running_var"] + FrozenBatchNorm2d.Eps).rsqrt();
            var shift = buffers["bias"] - buffers["running_mean"] * scale;
            weight = weight * scale.view(-1, 1, 1, 1);
            bias = bias * scale + shift;
        }
        return (weight.MoveToOuterDisposeScope(), bias.MoveToOuterDisposeScope());
    }
}
