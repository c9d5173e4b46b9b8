using System.Buffers.Binary;

namespace RetinaNet.Data.Converters;

public readonly record struct ImageSize(int Width, int Height);

/// <summary>An image's size from its file header, without decoding pixels: PNG (IHDR), JPEG (the SOF segment, with
/// the EXIF orientation applied: tags 5-8 swap width and height, as the decoders rotate the pixels), BMP (the DIB
/// header). The format is recognised by its magic bytes, not the file extension.</summary>
// By hand, not SKCodec: SKCodec.Create fails without a PNG's IDAT or a JPEG's tables and SOS, and gives no reason.
public static class ImageHeader
{
    public static ImageSize Read(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 4096);
            return Read(stream, path);
        }
        catch (EndOfStreamException)
        {
            throw new BadInputException(path, "image header is truncated; the file is damaged, re-export or remove it");
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new BadInputException(path, "image file not found");
        }
        catch (UnauthorizedAccessException e)
        {
            throw new BadInputException(path, $"cannot read the image ({e.Message})");
        }
    }

    public static ImageSize Read(Stream stream, string path)
    {
        var magic = Bytes(stream, 2);
        return magic switch
        {
            [0xFF, 0xD8] => Jpeg(stream, path),
            [0x89, 0x50] => Png(stream, path),
            [0x42, 0x4D] => Bmp(stream, path),
            _ => throw new BadInputException(path,
                "not a JPEG, PNG or BMP image (unrecognised header); convert it or remove it"),
        };
    }

    static ImageSize Png(Stream s, string path)
    {
        var head = Bytes(s, 22); // rest of the signature (6), IHDR length (4), "IHDR" (4), width (4), height (4)
        if (!head.AsSpan(0, 6).SequenceEqual<byte>([0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
            || !head.AsSpan(10, 4).SequenceEqual("IHDR"u8))
            throw new BadInputException(path, "damaged PNG header (no IHDR chunk first); re-export the image");
        return Checked(BinaryPrimitives.ReadInt32BigEndian(head.AsSpan(14)),
            BinaryPrimitives.ReadInt32BigEndian(head.AsSpan(18)), path);
    }

    static ImageSize Bmp(Stream s, string path)
    {
        var head = Bytes(s, 24); // file header rest (12), DIB header size (4), then the size fields
        int dib = BinaryPrimitives.ReadInt32LittleEndian(head.AsSpan(12));
        if (dib == 12) // BITMAPCOREHEADER: 16-bit unsigned sizes
            return Checked(BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(16)),
                BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(18)), path);
        // BITMAPINFOHEADER and later: a negative height means rows stored top-down.
        int height = BinaryPrimitives.ReadInt32LittleEndian(head.AsSpan(20));
        return Checked(BinaryPrimitives.ReadInt32LittleEndian(head.AsSpan(16)),
            height == int.MinValue ? 0 : Math.Abs(height), path);
    }

    static ImageSize Jpeg(Stream s, string path)
    {
        int orientation = 1;
        while (true)
        {
            int b = Byte(s);
            if (b != 0xFF) throw new BadInputException(path, "damaged JPEG (expected a marker); re-export the image");
            int marker;
            do marker = Byte(s); while (marker == 0xFF); // fill bytes
            if (marker is 0x01 or (>= 0xD0 and <= 0xD8)) continue; // markers without a length
            if (marker is 0xD9 or 0xDA)
                throw new BadInputException(path,
                    "JPEG has no frame header (SOF) before its image data; re-export the image");
            var lengthBytes = Bytes(s, 2);
            int length = BinaryPrimitives.ReadUInt16BigEndian(lengthBytes) - 2;
            if (length < 0) throw new BadInputException(path, "damaged JPEG segment length; re-export the image");
            // SOF0-15 except DHT (C4), JPG (C8), DAC (CC): precision, height, width.
            if (marker is >= 0xC0 and <= 0xCF and not (0xC4 or 0xC8 or 0xCC))
            {
                var sof = Bytes(s, 5);
                var size = Checked(BinaryPrimitives.ReadUInt16BigEndian(sof.AsSpan(3)),
                    BinaryPrimitives.ReadUInt16BigEndian(sof.AsSpan(1)), path);
                return orientation is >= 5 and <= 8 ? new ImageSize(size.Height, size.Width) : size;
            }
            if (marker == 0xE1 && orientation == 1)
            {
                orientation = ExifOrientation(Bytes(s, length));
                continue;
            }
            s.Seek(length, SeekOrigin.Current);
        }
    }

    /// <summary>Tag 0x0112 of IFD0 in an APP1 "Exif\0\0" payload; 1 (as stored) when absent or unreadable.</summary>
    internal static int ExifOrientation(ReadOnlySpan<byte> app1)
    {
        if (app1.Length < 14 || !app1[..6].SequenceEqual("Exif\0\0"u8)) return 1;
        var tiff = app1[6..];
        bool little = tiff[0] == 'I' && tiff[1] == 'I';
        if (!little && !(tiff[0] == 'M' && tiff[1] == 'M')) return 1;
        ushort U16(ReadOnlySpan<byte> d) =>
            little ? BinaryPrimitives.ReadUInt16LittleEndian(d) : BinaryPrimitives.ReadUInt16BigEndian(d);
        uint U32(ReadOnlySpan<byte> d) =>
            little ? BinaryPrimitives.ReadUInt32LittleEndian(d) : BinaryPrimitives.ReadUInt32BigEndian(d);
        long ifd = U32(tiff[4..]);
        if (ifd + 2 > tiff.Length) return 1;
        int count = U16(tiff[(int)ifd..]);
        for (int i = 0; i < count; i++)
        {
            long entry = ifd + 2 + 12L * i;
            if (entry + 12 > tiff.Length) return 1;
            var e = tiff.Slice((int)entry, 12);
            if (U16(e) == 0x0112 && U16(e[2..]) == 3) return U16(e[8..]); // SHORT, value stored inline
        }
        return 1;
    }

    static ImageSize Checked(int width, int height, string path) =>
        width > 0 && height > 0 ? new ImageSize(width, height)
            : throw new BadInputException(path,
                $"image header gives a size of {width}x{height}; the file is damaged, re-export it");

    static int Byte(Stream s) => s.ReadByte() is int b and >= 0 ? b : throw new EndOfStreamException();

    static byte[] Bytes(Stream s, int n)
    {
        var buffer = new byte[n];
        s.ReadExactly(buffer);
        return buffer;
    }
}
