using SkiaSharp;

namespace RetinaNet.Data.Imaging;

/// <summary>Writes <see cref="RgbImage"/>s as PNG (lossless) or JPEG. Each save goes to a temporary file in the same
/// folder that is then renamed over the target, so a reader never sees half a file; missing folders are
/// created.</summary>
public static class ImageEncoder
{
    public static void SavePng(RgbImage image, string path) => Save(image, path, SKEncodedImageFormat.Png, 100);

    /// <param name="quality">1 (smallest) to 100 (best).</param>
    public static void SaveJpeg(RgbImage image, string path, int quality = 90)
    {
        if (quality is < 1 or > 100) throw new ArgumentOutOfRangeException(nameof(quality), quality,
            "JPEG quality must be 1 to 100");
        Save(image, path, SKEncodedImageFormat.Jpeg, quality);
    }

    static void Save(RgbImage image, string path, SKEncodedImageFormat format, int quality)
    {
        var rgba = SkiaPixels.ToRgba(image);
        var info = SkiaPixels.InfoOf(image.Width, image.Height);
        var full = Path.GetFullPath(path);
        var folder = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(folder);
        var temp = Path.Combine(folder, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            unsafe
            {
                fixed (byte* p = rgba)
                {
                    using var pixmap = new SKPixmap(info, (IntPtr)p, info.RowBytes);
                    using var data = pixmap.Encode(format, quality)
                        ?? throw new IOException($"{path}: could not encode the image as {format}");
                    using (var file = File.Create(temp)) data.SaveTo(file);
                }
            }
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
