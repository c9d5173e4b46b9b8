using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Data.Transforms;

/// <summary>ODTK's resize: the shorter side to a size drawn uniformly from [Min, Max] (one value for inference),
/// unless that makes the longer side exceed <c>MaxSize</c>, then the longer side to <c>MaxSize</c>. The new size is
/// floor(ratio · side) as PIL's resize in ODTK; boxes scale by the ratio. Bilinear with antialiasing (PIL's
/// BILINEAR when shrinking), on uint8 on the CPU (libtorch's vectorised path) and on float on the GPU.</summary>
public sealed class ResizeShorterSide(int min, int max, int maxSize,
    (int Height, int Width)? fit = null) : IImageTransform
{
    public ResizeShorterSide(int size, int maxSize, (int Height, int Width)? fit = null) : this(size, size, maxSize,
        fit) { }

    public static double Ratio(int width, int height, int size, int maxSize, (int Height, int Width)? fit = null) =>
        OnnxRuntime.ImageScale.Ratio(width, height, size, maxSize, fit);

    public void Apply(ImageWithBoxes image, Random random)
    {
        int size = min == max ? min : random.Next(min, max + 1);
        double ratio = Ratio(image.Width, image.Height, size, maxSize, fit);
        int w = OnnxRuntime.ImageScale.Scaled(image.Width, ratio),
            h = OnnxRuntime.ImageScale.Scaled(image.Height, ratio);
        if (w != image.Width || h != image.Height) image.ReplacePixels(Bilinear(image.Pixels, h, w));
        var boxes = image.Boxes;
        for (int i = 0; i < boxes.Length; i++) boxes[i] = (float)(boxes[i] * ratio);
        image.Scale *= ratio;
    }

    public static Tensor Bilinear(Tensor pixels, int height, int width)
    {
        using var scope = NewDisposeScope();
        Tensor result;
        if (pixels.device_type == DeviceType.CPU)
        {
            // channels-last uint8 is the layout libtorch's AVX2 uint8 resampler takes
            using var nhwc = pixels.permute(1, 2, 0).contiguous().unsqueeze(0).permute(0, 3, 1, 2);
            result = nn.functional.interpolate(nhwc, [height, width], mode: InterpolationMode.Bilinear,
                align_corners: false, antialias: true)[0].contiguous();
        }
        else
        {
            using var f = pixels.unsqueeze(0).to(ScalarType.Float32);
            result = nn.functional.interpolate(f, [height, width], mode: InterpolationMode.Bilinear,
                align_corners: false, antialias: true)[0]
                .round_().clamp_(Of(0), Of(255)).to(ScalarType.Byte);
        }
        return result.MoveToOuterDisposeScope();
    }
}

/// <summary>Mirror left-right with probability <c>P</c>: x → W − x; a rotated box's angle changes sign.</summary>
public sealed class HorizontalFlip(double p = 0.5) : IImageTransform
{
    public void Apply(ImageWithBoxes image, Random random)
    {
        if (random.NextDouble() >= p) return;
        image.ReplacePixels(image.Pixels.flip(2));
        var b = image.Boxes;
        int w = image.Width;
        for (int i = 0; i < b.Length; i += 4) (b[i], b[i + 2]) = (w - b[i + 2], w - b[i]);
        if (image.Angles is { } angles) for (int i = 0; i < angles.Length; i++) angles[i] = -angles[i];
    }
}

/// <summary>ODTK's <c>--augment-rotate</c>: a rotation by 0, 90, 180 or 270 degrees counter-clockwise, each with
/// probability 1/4.</summary>
public sealed class RandomRotate90 : IImageTransform
{
    public void Apply(ImageWithBoxes image, Random random) => Rotate(image, random.Next(4));

    /// <summary>Rotates counter-clockwise by k quarter turns: a point (x, y) of a W×H image goes to (y, W −
    /// x). A rotated box keeps its angle: turned a quarter further, it is the same box with width and height
    /// swapped, which is what the corners' mapping gives, so the angle stays in [−π/4, π/4].</summary>
    public static void Rotate(ImageWithBoxes image, int quarterTurns)
    {
        for (int k = 0; k < quarterTurns; k++)
        {
            int w = image.Width;
            image.ReplacePixels(rot90(image.Pixels, 1, (1, 2)).contiguous());
            var b = image.Boxes;
            for (int i = 0; i < b.Length; i += 4)
            {
                float x1 = b[i], y1 = b[i + 1], x2 = b[i + 2], y2 = b[i + 3];
                (b[i], b[i + 1], b[i + 2], b[i + 3]) = (y1, w - x2, y2, w - x1);
            }
        }
    }
}

/// <summary>ODTK's DALI <c>RandomBBoxCrop</c> (SSD-style), our <c>--augment-crop</c>: pick "no crop" or a minimum IoU
/// from {0, .1, .3, .5, .7, .9}; try windows of relative size [0.3, 1] per side with aspect ratio (w/h, relative to
/// the image) in [0.5, 2] until one overlaps some box with at least that IoU (up to <c>Attempts</c>, else no crop).
/// Boxes whose centre lies inside the window are kept and clipped to it; the others go, so no object is cut in half
/// without its centre. Crowd regions follow the same rule. Images without boxes are cropped freely. Not for rotated
/// boxes (clipping cuts the unturned box): the command line refuses the pair.</summary>
public sealed class BboxSafeCrop(int attempts = 10) : IImageTransform
{
    static readonly double[] Thresholds = [0, 0.1, 0.3, 0.5, 0.7, 0.9];

    public void Apply(ImageWithBoxes image, Random random)
    {
        int choice = random.Next(Thresholds.Length + 1);
        if (choice == Thresholds.Length) return; // no crop
        double threshold = Thresholds[choice];
        int W = image.Width, H = image.Height;
        for (int attempt = 0; attempt < attempts; attempt++)
        {
            double sw = 0.3 + 0.7 * random.NextDouble(), sh = 0.3 + 0.7 * random.NextDouble();
            if (sw / sh < 0.5 || sw / sh > 2) continue;
            int cw = Math.Max(1, (int)(sw * W)), ch = Math.Max(1, (int)(sh * H));
            int cx = random.Next(W - cw + 1), cy = random.Next(H - ch + 1);
            if (!Accept(image.Boxes, image.Count, cx, cy, cw, ch, threshold)) continue;
            Crop(image, cx, cy, cw, ch);
            return;
        }
    }

    static bool Accept(float[] b, int n, int cx, int cy, int cw, int ch, double threshold)
    {
        if (n == 0) return true;
        for (int i = 0; i < n; i++)
        {
            double ix = Math.Min(b[4 * i + 2], cx + cw) - Math.Max(b[4 * i], cx), iy = Math.Min(b[4 * i + 3], cy + ch)
                - Math.Max(b[4 * i + 1], cy);
            double inter = Math.Max(0, ix) * Math.Max(0, iy);
            double union = (b[4 * i + 2] - b[4 * i]) * (b[4 * i + 3] - b[4 * i + 1]) + (double)cw * ch - inter;
            double mx = (b[4 * i] + b[4 * i + 2]) / 2, my = (b[4 * i + 1] + b[4 * i + 3]) / 2;
            bool centreInside = mx >= cx && mx < cx + cw && my >= cy && my < cy + ch;
            if (centreInside && union > 0 && inter / union >= threshold) return true;
        }
        return false;
    }

    /// <summary>Cuts the window [x, x + w) × [y, y + h); keeps the boxes whose centre is inside, shifted and
    /// clipped.</summary>
    public static void Crop(ImageWithBoxes image, int x, int y, int w, int h)
    {
        image.ReplacePixels(image.Pixels[.., y..(y + h), x..(x + w)].contiguous());
        var boxes = new List<float>();
        var classes = new List<int>();
        var b = image.Boxes;
        for (int i = 0; i < image.Count; i++)
        {
            float mx = (b[4 * i] + b[4 * i + 2]) / 2, my = (b[4 * i + 1] + b[4 * i + 3]) / 2;
            if (mx < x || mx >= x + w || my < y || my >= y + h) continue;
            boxes.AddRange([Math.Clamp(b[4 * i] - x, 0, w), Math.Clamp(b[4 * i + 1] - y, 0, h),
                Math.Clamp(b[4 * i + 2] - x, 0, w), Math.Clamp(b[4 * i + 3] - y, 0, h)]);
            classes.Add(image.Classes[i]);
        }
        image.ReplaceBoxes([.. boxes], [.. classes]);
    }
}

/// <summary>ODTK's colour augmentation (torchvision ColorJitter's ranges: brightness, contrast and saturation factors
/// uniform in [1 − v, 1 + v], hue shift uniform in [−v, v] turns), applied to half of the images as ODTK does. Only
/// the factors are drawn here; <see cref="ColorJitter.ApplyBatch"/> applies them on the device.</summary>
public sealed class RandomColor(double brightness, double contrast, double saturation, double hue) : IImageTransform
{
    public bool Enabled => brightness > 0 || contrast > 0 || saturation > 0 || hue > 0;

    public void Apply(ImageWithBoxes image, Random random)
    {
        if (!Enabled || random.Next(2) == 0) return;
        float Factor(double v) => (float)(1 + v * (2 * random.NextDouble() - 1));
        image.Color = new ColorFactors(Factor(brightness), Factor(contrast), Factor(saturation),
            (float)(hue * (2 * random.NextDouble() - 1)));
    }
}
