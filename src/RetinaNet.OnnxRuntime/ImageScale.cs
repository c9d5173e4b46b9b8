namespace RetinaNet.OnnxRuntime;

/// <summary>ODTK's input scale: the shorter side to a size unless that makes the longer side exceed a maximum, then
/// the longer side to the maximum; the new size is floor(ratio · side), as PIL's resize in ODTK. Training,
/// inference and deployed models all scale by this rule.</summary>
public static class ImageScale
{
    /// <summary>Shorter side to <paramref name="size"/>, longer side at most <paramref name="maxSize"/>, and when
    /// <paramref name="fit"/> is given (a model with a fixed input size) within its height and width.</summary>
    public static double Ratio(int width, int height, int size, int maxSize, (int Height, int Width)? fit = null)
    {
        double ratio = (double)size / Math.Min(width, height);
        if (ratio * Math.Max(width, height) > maxSize) ratio = (double)maxSize / Math.Max(width, height);
        if (fit is var (h, w)) ratio = Math.Min(ratio, Math.Min((double)h / height, (double)w / width));
        return ratio;
    }

    /// <summary>The scaled size of a side: floor(ratio · side), at least 1.</summary>
    public static int Scaled(int side, double ratio) => Math.Max(1, (int)(ratio * side));

    /// <summary>A box from the model (inclusive pixel corners x1, y1, x2, y2 in the scaled image, ODTK's convention:
    /// a target [x, y, w, h] is encoded as corners x .. x + w − 1) in the original image's pixels as (x, y, width,
    /// height), clipped to the image; null when nothing of it is left.</summary>
    public static (float X, float Y, float Width, float Height)? ToOriginal(ReadOnlySpan<float> corners, double ratio,
        (int Width, int Height) original)
    {
        float x1 = Math.Clamp((float)(corners[0] / ratio), 0, original.Width),
            y1 = Math.Clamp((float)(corners[1] / ratio), 0, original.Height);
        float x2 = Math.Clamp((float)((corners[2] + 1) / ratio), 0, original.Width),
            y2 = Math.Clamp((float)((corners[3] + 1) / ratio), 0, original.Height);
        return x2 <= x1 || y2 <= y1 ? null : (x1, y1, x2 - x1, y2 - y1);
    }
}
