namespace RetinaNet.Data;

/// <summary>Decoded 8-bit RGB pixels, row-major, interleaved (HWC): what every decoder produces and every
/// transform starts from. Orientation (EXIF) is already applied.</summary>
public sealed class RgbImage
{
    public int Width { get; }
    public int Height { get; }
    /// <summary>Height * Width * 3 bytes: R, G, B of pixel (y, x) at 3 * (y * Width + x).</summary>
    public byte[] Pixels { get; }

    public RgbImage(int width, int height, byte[] pixels)
    {
        if (width <= 0 || height <= 0)
            throw new ArgumentException($"image size must be positive, got {width}x{height}");
        if (pixels.Length != checked(width * height * 3)) throw new ArgumentException($"expected {width * height * 3} "
            + $"bytes for {width}x{height} RGB, got {pixels.Length}");
        (Width, Height, Pixels) = (width, height, pixels);
    }
}

/// <summary>Bad input data (an image, an annotation file): the message names the file, says what is wrong and how
/// to fix it, on one line.</summary>
public sealed class BadInputException(string path, string problem) : IOException($"{path}: {problem}")
{
    public string Path { get; } = path;
}
