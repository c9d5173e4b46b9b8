using static TorchSharp.torch;

namespace RetinaNet.Data.Transforms;

/// <summary>Applies each image's <see cref="ColorFactors"/> to a whole batch on its device in a few kernels:
/// brightness (scale), contrast (blend with the image's mean grey level over its valid region), saturation (blend with
/// the pixel's grey level) as torchvision's ColorJitter, each clamped to [0, 1]; hue as a rotation of the chroma in
/// YIQ space (torchvision goes through HSV; for the small shifts ODTK uses the two agree closely).</summary>
public static class ColorJitter
{
    /// <param name="images">float [B, 3, H, W] in [0, 1], changed in place.</param>
    /// <param name="factors">float [B, 4]: brightness, contrast, saturation, hue (turns).</param>
    /// <param name="valid">float [B, 1, H, W]: 1 on image pixels, 0 on padding.</param>
    public static void ApplyBatch(Tensor images, Tensor factors, Tensor valid)
    {
        using var scope = NewDisposeScope();
        long b = images.shape[0];
        var f = factors.to(images.device).view(b, 4, 1, 1, 1);
        images.mul_(f[.., 0]).clamp_(Of(0), Of(1));
        var grey = Grey(images);
        var mean = (grey * valid).sum([1, 2, 3], keepdim: true)
            / valid.sum([1, 2, 3], keepdim: true).clamp_min(Of(1));
        images.mul_(f[.., 1]).Plus_(mean * Of(1).Minus(f[.., 1])).clamp_(Of(0), Of(1));
        grey = Grey(images);
        images.mul_(f[.., 2]).Plus_(grey * Of(1).Minus(f[.., 2])).clamp_(Of(0), Of(1));
        var angle = factors.to(images.device)[.., 3] * Of(2 * Math.PI);
        var rotation = HueRotation(angle); // [B, 3, 3]
        var rotated = einsum("bij,bjhw->bihw", rotation, images).clamp_(Of(0), Of(1));
        images.copy_(rotated);
    }

    static Tensor Grey(Tensor images) =>
        (images[.., 0..1] * Of(0.2989)).Plus(images[.., 1..2] * Of(0.587)).Plus(images[.., 2..3] * Of(0.114));

    static Tensor YiqMatrix()
        => tensor(new float[] { 0.299f, 0.587f, 0.114f, 0.596f, -0.274f, -0.322f, 0.211f, -0.523f, 0.312f }, [3, 3]);

    /// <summary>RGB → YIQ, rotate I/Q by the angle, → RGB: one 3×3 matrix per image.</summary>
    static Tensor HueRotation(Tensor angle)
    {
        var toYiq = DeviceConstants.Get("rgb-to-yiq", angle.device, YiqMatrix);
        // inverted on the CPU: no device wait
        var fromYiq = DeviceConstants.Get("yiq-to-rgb", angle.device, () => { using var m = YiqMatrix();
            return linalg.inv(m); });
        long b = angle.shape[0];
        var c = cos(angle); var s = sin(angle);
        var one = ones_like(c); var zero = zeros_like(c);
        var rot = stack([one, zero, zero, zero, c, -s, zero, s, c], 1).view(b, 3, 3);
        return fromYiq.unsqueeze(0).matmul(rot).matmul(toYiq.unsqueeze(0));
    }
}
