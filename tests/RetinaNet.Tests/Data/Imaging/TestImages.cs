using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using RetinaNet.Data;
using Xunit;

namespace RetinaNet.Tests.Data.Imaging;

/// <summary>Byte-exact PNG and BMP writers, independent of the decoder under test, so expected pixels
/// are known exactly.</summary>
static class TestImages
{
    /// <summary>A PNG with one IDAT; <paramref name="rows"/> are the raw scanlines without filter bytes
    /// (filter 0 is added).</summary>
    public static byte[] Png(int width, int height, byte colorType, byte bitDepth, byte[][] rows,
        byte[]? plte = null, byte[]? trns = null)
    {
        var png = new MemoryStream();
        png.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = bitDepth;
        ihdr[9] = colorType; // compression, filter, interlace: 0
        Chunk(png, "IHDR", ihdr);
        if (plte is not null) Chunk(png, "PLTE", plte);
        if (trns is not null) Chunk(png, "tRNS", trns);
        var raw = new MemoryStream();
        foreach (var row in rows) { raw.WriteByte(0); raw.Write(row); }
        var z = new MemoryStream();
        using (var zlib = new ZLibStream(z, CompressionLevel.Optimal, leaveOpen: true)) zlib.Write(raw.ToArray());
        Chunk(png, "IDAT", z.ToArray());
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    static void Chunk(Stream s, string type, byte[] data)
    {
        var len = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(len, data.Length);
        s.Write(len);
        var typed = Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        s.Write(typed);
        var crc = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(crc, Crc32(typed));
        s.Write(crc);
    }

    static uint Crc32(byte[] data)
    {
        uint c = 0xFFFFFFFF;
        foreach (var b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        return ~c;
    }

    /// <summary>A 24-bit bottom-up BMP of the given RGB pixels.</summary>
    public static byte[] Bmp(RgbImage image)
    {
        int stride = (image.Width * 3 + 3) & ~3, size = 54 + stride * image.Height;
        var bmp = new byte[size];
        bmp[0] = (byte)'B'; bmp[1] = (byte)'M';
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(2), size);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(10), 54);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(14), 40);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(18), image.Width);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(22), image.Height);
        BinaryPrimitives.WriteInt16LittleEndian(bmp.AsSpan(26), 1);
        BinaryPrimitives.WriteInt16LittleEndian(bmp.AsSpan(28), 24);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(34), stride * image.Height);
        for (int y = 0; y < image.Height; y++)
            for (int x = 0; x < image.Width; x++)
            {
                int src = 3 * (y * image.Width + x), dst = 54 + (image.Height - 1 - y) * stride + 3 * x;
                (bmp[dst], bmp[dst + 1], bmp[dst + 2]) =
                    (image.Pixels[src + 2], image.Pixels[src + 1], image.Pixels[src]);
            }
        return bmp;
    }

    /// <summary>A small image whose every pixel differs: R = 10x, G = 7y, B = x*y mod 256.</summary>
    public static RgbImage Gradient(int width, int height)
    {
        var px = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                (px[3 * (y * width + x)], px[3 * (y * width + x) + 1], px[3 * (y * width + x) + 2]) =
                    ((byte)(10 * x), (byte)(7 * y), (byte)(x * y));
        return new RgbImage(width, height, px);
    }

    public static (byte R, byte G, byte B) At(RgbImage image, int x, int y)
    {
        int i = 3 * (y * image.Width + x);
        return (image.Pixels[i], image.Pixels[i + 1], image.Pixels[i + 2]);
    }

    /// <summary>Asserts the pixel is within <paramref name="tolerance"/> of the expected colour
    /// in every channel.</summary>
    public static void Near((byte R, byte G, byte B) expected, RgbImage image, int x, int y, int tolerance)
    {
        var got = At(image, x, y);
        Assert.True(Math.Abs(got.R - expected.R) <= tolerance && Math.Abs(got.G - expected.G) <= tolerance
            && Math.Abs(got.B - expected.B) <= tolerance,
            $"pixel ({x}, {y}): expected {expected} within {tolerance}, got {got}");
    }

    public static string ImageFixture(string name) => Paths.Fixture("images", name);
}
