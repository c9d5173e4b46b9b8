namespace RetinaNet.Data.Transforms;

/// <summary>ODTK's augmentation options (names as its command line).</summary>
public sealed record AugmentationOptions(int JitterMin, int JitterMax, int MaxSize, bool Rotate = false,
    bool Crop = false,
    double Brightness = 0.002, double Contrast = 0.002, double Saturation = 0.002, double Hue = 0.0002,
        bool Flip = true);

/// <summary>The two transform chains: training (bbox-safe crop, quarter-turn rotation, jittered resize, flip, colour)
/// and inference (fixed resize only).</summary>
public static class Augmentation
{
    public static TransformChain ForTraining(AugmentationOptions o)
    {
        var steps = new List<IImageTransform>();
        if (o.Crop) steps.Add(new BboxSafeCrop());
        if (o.Rotate) steps.Add(new RandomRotate90());
        steps.Add(new ResizeShorterSide(o.JitterMin, o.JitterMax, o.MaxSize));
        if (o.Flip) steps.Add(new HorizontalFlip());
        var color = new RandomColor(o.Brightness, o.Contrast, o.Saturation, o.Hue);
        if (color.Enabled) steps.Add(color);
        return new TransformChain(steps);
    }

    /// <summary>Resize only; <paramref name="fit"/>: also fit within a fixed model input (exported models).</summary>
    public static TransformChain ForInference(int resize, int maxSize, (int Height, int Width)? fit = null) =>
        new([new ResizeShorterSide(resize, maxSize, fit)]);
}
