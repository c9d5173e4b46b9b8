using static TorchSharp.torch;

namespace RetinaNet.Data;

/// <summary>Decoded images as tensors (RgbImage itself lives in RetinaNet.OnnxRuntime, which has no
/// libtorch).</summary>
public static class RgbImageTensors
{
    /// <summary>The pixels as a uint8 tensor [3, H, W] on the CPU (a copy).</summary>
    public static Tensor ToTensor(this RgbImage image)
    {
        using var hwc = tensor(image.Pixels, [image.Height, image.Width, 3], ScalarType.Byte);
        return hwc.permute(2, 0, 1).contiguous();
    }
}
