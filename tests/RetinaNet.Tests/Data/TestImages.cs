using System.Buffers.Binary;

namespace RetinaNet.Tests.Data;

/// <summary>Image files reduced to their headers (what <c>ImageHeader</c> reads), built byte by byte from
/// the format specs.</summary>
static class TestImages
{
    static byte[] BE16(int v) { var b = new byte[2]; BinaryPrimitives.WriteUInt16BigEndian(b, (ushort)v); return b; }
    static byte[] BE32(int v) { var b = new byte[4]; BinaryPrimitives.WriteInt32BigEndian(b, v); return b; }
    static byte[] LE16(int v) { var b = new byte[2]; BinaryPrimitives.WriteUInt16LittleEndian(b, (ushort)v); return b; }
    static byte[] LE32(int v) { var b = new byte[4]; BinaryPrimitives.WriteInt32LittleEndian(b, v); return b; }

    /// <summary>PNG signature, IHDR (8-bit RGB; CRC left zero, headers readers need not check it), IEND.</summary>
    public static byte[] Png(int width, int height) =>
        [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A,
         .. BE32(13), .. "IHDR"u8, .. BE32(width), .. BE32(height), 8, 2, 0, 0, 0, 0, 0, 0, 0,
         .. BE32(0), .. "IEND"u8, 0xAE, 0x42, 0x60, 0x82];

    /// <summary>SOI, APP0 (JFIF), optional APP1 (big-endian EXIF with one Orientation entry), DQT, SOF0, EOI.</summary>
    public static byte[] Jpeg(int width, int height, int? orientation = null)
    {
        byte[] jfif = [0xFF, 0xE0, .. BE16(16), .. "JFIF\0"u8, 1, 1, 0, 0, 1, 0, 1, 0, 0];
        byte[] exif = orientation is int o
            ? [0xFF, 0xE1, .. BE16(2 + 6 + 8 + 2 + 12 + 4), .. "Exif\0\0"u8, .. "MM"u8, 0, 42, .. BE32(8), .. BE16(1),
               .. BE16(0x0112), .. BE16(3), .. BE32(1), .. BE16(o), 0, 0, .. BE32(0)]
            : [];
        byte[] dqt = [0xFF, 0xDB, .. BE16(2 + 65), 0, .. new byte[64]];
        byte[] sof = [0xFF, 0xC0, .. BE16(17), 8, .. BE16(height), .. BE16(width), 3, 1, 0x22, 0, 2, 0x11, 1, 3,
            0x11, 1];
        return [0xFF, 0xD8, .. jfif, .. exif, .. dqt, .. sof, 0xFF, 0xD9];
    }

    /// <summary>BITMAPFILEHEADER + BITMAPINFOHEADER (negative height = top-down rows).</summary>
    public static byte[] Bmp(int width, int height) =>
        [(byte)'B', (byte)'M', .. LE32(54), .. LE32(0), .. LE32(54), .. LE32(40), .. LE32(width), .. LE32(height),
         .. LE16(1), .. LE16(24), .. new byte[24]];

    /// <summary>BITMAPFILEHEADER + the old 12-byte BITMAPCOREHEADER (16-bit sizes).</summary>
    public static byte[] BmpCore(int width, int height) =>
        [(byte)'B', (byte)'M', .. LE32(26), .. LE32(0), .. LE32(26), .. LE32(12), .. LE16(width), .. LE16(height),
            .. LE16(1), .. LE16(24)];

    public static string Write(string dir, string relative, byte[] bytes)
    {
        var path = Path.Combine(dir, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    public static string WriteText(string dir, string relative, string text) =>
        Write(dir, relative, System.Text.Encoding.UTF8.GetBytes(text));
}
