using static TorchSharp.torch;

namespace RetinaNet.Data.Transforms;

/// <summary>An image on its way through the transforms, with the boxes that must stay aligned with its pixels.
/// Boxes are corners (x1, y1, x2, y2) in continuous pixel coordinates of the current pixels (the pixel at
/// column x covers [x, x + 1)), so a flip maps x to W - x and a resize by r maps x to r·x. Rotated boxes add
/// <see cref="Angles"/> (see <see cref="Sample"/>).</summary>
public sealed class ImageWithBoxes : IDisposable
{
    /// <summary>uint8 [3, H, W] on any device. Owned: a transform that replaces it disposes the old one.</summary>
    public Tensor Pixels { get; private set; }
    public float[] Boxes { get; private set; }
    public int[] Classes { get; private set; }
    /// <summary>Each box's theta (rotated boxes), or null.</summary>
    public float[]? Angles { get; private set; }
    /// <summary>Current size over original size (resizing is isotropic): detections divide by it.</summary>
    public double Scale { get; set; } = 1;
    /// <summary>Colour changes to apply later on the whole batch (on the device); identity unless jittered.</summary>
    public ColorFactors Color { get; set; } = ColorFactors.Identity;

    public ImageWithBoxes(Tensor pixels, float[] boxes, int[] classes, float[]? angles = null)
    {
        if (angles is not null && angles.Length != classes.Length)
            throw new ArgumentException($"{angles.Length} angles for {classes.Length} boxes");
        if (pixels.dim() != 3 || pixels.shape[0] != 3 || pixels.dtype != ScalarType.Byte)
            throw new ArgumentException(
                $"expected uint8 [3, H, W] pixels, got {pixels.dtype} [{string.Join(", ", pixels.shape)}]");
        if (boxes.Length != classes.Length * 4) throw new ArgumentException($"{boxes.Length} box coordinates for "
            + $"{classes.Length} classes");
        (Pixels, Boxes, Classes, Angles) = (pixels, boxes, classes, angles);
    }

    public int Width => (int)Pixels.shape[2];
    public int Height => (int)Pixels.shape[1];
    public int Count => Classes.Length;

    public void ReplacePixels(Tensor pixels)
    {
        if (!ReferenceEquals(pixels, Pixels)) Pixels.Dispose();
        Pixels = pixels;
    }

    public void ReplaceBoxes(float[] boxes, int[] classes, float[]? angles = null)
        => (Boxes, Classes, Angles) = (boxes, classes, angles);

    /// <summary>Clips boxes to the image and drops those left with no width or height; returns how many
    /// went.</summary>
    public int ClipBoxes()
    {
        int before = Count;
        var (boxes, classes, angles) = Sample.Clip(Boxes, Classes, Angles, Width, Height);
        ReplaceBoxes(boxes, classes, angles);
        return before - Count;
    }

    public void Dispose() => Pixels.Dispose();
}

/// <summary>One image's colour jitter, drawn on the worker (so it is reproducible under the seed) and applied on
/// the device for the whole batch at once: brightness and contrast and saturation factors (1 = unchanged) and a hue
/// rotation in turns (0 = unchanged).</summary>
public readonly record struct ColorFactors(float Brightness, float Contrast, float Saturation, float Hue)
{
    public static readonly ColorFactors Identity = new(1, 1, 1, 0);
}

/// <summary>One step of the augmentation chain. Randomness comes only from <paramref name="random"/>, which the
/// loader seeds per sample, so a run is reproducible whatever the thread timing.</summary>
public interface IImageTransform
{
    void Apply(ImageWithBoxes image, Random random);
}

/// <summary>Transforms applied in order.</summary>
public sealed class TransformChain(IReadOnlyList<IImageTransform> steps) : IImageTransform
{
    public IReadOnlyList<IImageTransform> Steps { get; } = steps;

    public void Apply(ImageWithBoxes image, Random random)
    {
        foreach (var step in Steps) step.Apply(image, random);
    }
}
