using SkiaSharp;

namespace RetinaNet.Data.Imaging;

/// <summary><see cref="RgbImage"/> to and from Skia, which has no 3-byte pixel format: opaque RGBA in
/// between.</summary>
static class SkiaPixels
{
    public static SKImageInfo InfoOf(int width, int height) =>
        new(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque);

    /// <summary>The pixels widened to opaque RGBA, 4 * width bytes a row.</summary>
    public static byte[] ToRgba(RgbImage image)
    {
        var rgba = new byte[image.Width * image.Height * 4];
        var rgb = image.Pixels;
        for (int i = 0, j = 0; j < rgb.Length; i += 4, j += 3)
        {
            rgba[i] = rgb[j];
            rgba[i + 1] = rgb[j + 1];
            rgba[i + 2] = rgb[j + 2];
            rgba[i + 3] = 255;
        }
        return rgba;
    }

    /// <summary>A Skia image holding a copy of the pixels.</summary>
    public static SKImage ToSkImage(RgbImage image) =>
        SKImage.FromPixelCopy(InfoOf(image.Width, image.Height), ToRgba(image))
        ?? throw new InvalidOperationException($"Skia could not make a {image.Width}x{image.Height} image");

    /// <summary>An opaque RGBA bitmap's pixels as RGB (alpha dropped).</summary>
    public static RgbImage ToRgb(SKBitmap bitmap)
    {
        if (bitmap.ColorType != SKColorType.Rgba8888 || bitmap.RowBytes != 4 * bitmap.Width)
            throw new ArgumentException(
                $"expected a packed RGBA bitmap, got {bitmap.ColorType}, {bitmap.RowBytes} bytes a row");
        return ExifOrientation.ToUprightRgb(bitmap.GetPixelSpan().ToArray(), bitmap.Width, bitmap.Height,
            SKEncodedOrigin.TopLeft);
    }

    public static SKColor ToSk((byte R, byte G, byte B) color, byte alpha = 255) =>
        new(color.R, color.G, color.B, alpha);
}
