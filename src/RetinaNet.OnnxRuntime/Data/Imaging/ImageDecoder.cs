using System.Buffers;
using SkiaSharp;

namespace RetinaNet.Data.Imaging;

/// <summary>Reads JPEG, PNG and BMP files into 8-bit RGB with the EXIF orientation applied (SkiaSharp underneath).
/// Every source kind becomes RGB: greyscale is copied to R=G=B, palettes are expanded, 16-bit samples are rounded to
/// 8 bits, CMYK JPEGs are converted, and alpha is dropped (the stored colour is kept as is, not composited on any
/// background). No colour management: embedded ICC profiles are ignored, as PIL and OpenCV do by default.
/// Any problem with a file is a <see cref="BadInputException"/> naming it.</summary>
public static class ImageDecoder
{
    /// <summary>The advice every image error ends with (a server, which has no such option, drops it).</summary>
    public const string SkipHint = "re-export the image or pass --skip-bad-images";

    public static RgbImage Decode(string path) => Decode(ReadAll(path), path);

    /// <param name="nameForErrors">What error messages call the data (its file name, usually).</param>
    public static RgbImage Decode(byte[] data, string nameForErrors)
    {
        var format = Sniff(data, nameForErrors);
        using var stream = new SKMemoryStream(data);
        using var codec = SKCodec.Create(stream, out var created)
            ?? throw new BadInputException(nameForErrors,
            $"truncated or corrupt {format} data (header unreadable: {created}); {SkipHint}");
        int width = codec.Info.Width, height = codec.Info.Height;
        if ((long)width * height > MaxPixels)
            throw new BadInputException(nameForErrors,
                $"{format} image is {width}x{height}, more than {MaxPixels / 1_000_000} megapixels; resize it");
        // Unpremul: alpha must not darken the colour we keep. No colour space: no ICC conversion.
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var rgba = ArrayPool<byte>.Shared.Rent(info.BytesSize);
        try
        {
            SKCodecResult result;
            unsafe
            {
                fixed (byte* p = rgba) result = codec.GetPixels(info, (IntPtr)p);
            }
            // Skia fills what it could not decode and says IncompleteInput; a silently half-grey image must not reach
            // training.
            if (result != SKCodecResult.Success)
                throw new BadInputException(nameForErrors,
                    $"truncated or corrupt {format} data ({result}); {SkipHint}");
            return ExifOrientation.ToUprightRgb(rgba, width, height, codec.EncodedOrigin);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rgba);
        }
    }

    /// <summary>The format and the (width, height) that <see cref="Decode(byte[], string)"/> would return (after
    /// orientation), from the headers alone: a server checks an upload's size before it decodes (decompression
    /// bombs).</summary>
    public static (string Format, int Width, int Height) Probe(byte[] data, string nameForErrors)
    {
        var format = Sniff(data, nameForErrors);
        using var stream = new SKMemoryStream(data);
        var (w, h) = UprightSize(stream, format, nameForErrors);
        return (format, w, h);
    }

    /// <summary>(width, height) as <see cref="Decode(string)"/> would return them (after orientation), read from the
    /// file's headers without decoding the pixels.</summary>
    public static (int Width, int Height) ReadSize(string path)
    {
        CheckFile(path);
        using var file = File.OpenRead(path);
        var head = new byte[16];
        int n = file.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        var format = Sniff(head.AsSpan(0, n), path);
        file.Position = 0;
        using var stream = new SKManagedStream(file);
        return UprightSize(stream, format, path);
    }

    // (width, height) after the EXIF orientation, from the headers alone
    static (int Width, int Height) UprightSize(SKStream stream, string format, string name)
    {
        using var codec = SKCodec.Create(stream, out var created)
            ?? throw new BadInputException(name,
            $"truncated or corrupt {format} data (header unreadable: {created}); {SkipHint}");
        var (w, h) = (codec.Info.Width, codec.Info.Height);
        return ExifOrientation.SwapsAxes(codec.EncodedOrigin) ? (h, w) : (w, h);
    }

    /// <summary>Largest image accepted: the RGBA buffer must stay below 2 GB.</summary>
    const long MaxPixels = 400_000_000;

    /// <summary>The file's bytes, with the same missing/empty-file errors as <see cref="Decode(string)"/>.</summary>
    public static byte[] ReadAll(string path)
    {
        CheckFile(path);
        return File.ReadAllBytes(path);
    }

    static void CheckFile(string path)
    {
        var file = new FileInfo(path);
        if (!file.Exists)
            throw new BadInputException(path, Directory.Exists(path) ? "is a folder, not an image file"
                : "file not found; check the path (and the image folder it is relative to)");
        if (file.Length == 0) throw new BadInputException(path, $"empty file (0 bytes); {SkipHint}");
    }

    /// <summary>JPEG, PNG or BMP by the data's magic number; null for anything else.</summary>
    public static string? FormatOf(ReadOnlySpan<byte> data) => data switch
    {
        [0xFF, 0xD8, 0xFF, ..] => "JPEG",
        [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => "PNG",
        [(byte)'B', (byte)'M', ..] => "BMP",
        _ => null,
    };

    /// <summary>The format from the first bytes; only the formats the project supports get through to Skia.</summary>
    static string Sniff(ReadOnlySpan<byte> data, string name)
    {
        if (data.Length == 0) throw new BadInputException(name, $"empty file (0 bytes); {SkipHint}");
        if (FormatOf(data) is string format) return format;
        if (data.Length < 3) throw new BadInputException(name,
            $"truncated or corrupt image data (only {data.Length} bytes); {SkipHint}");
        var start = Convert.ToHexString(data[..Math.Min(8, data.Length)]);
        var spaced = string.Join(' ', Enumerable.Range(0, start.Length / 2).Select(i => start.Substring(2 * i, 2)));
        throw new BadInputException(name,
            $"not a JPEG/PNG/BMP image (starts with bytes {spaced}); convert it or remove it from the data set");
    }
}
