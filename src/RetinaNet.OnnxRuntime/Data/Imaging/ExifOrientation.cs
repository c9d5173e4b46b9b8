using System.Runtime.Intrinsics;
using SkiaSharp;

namespace RetinaNet.Data.Imaging;

/// <summary>Turns the decoder's RGBA buffer (as stored in the file) into upright RGB: the EXIF orientation is applied
/// and alpha dropped in the same pass over the pixels.</summary>
static class ExifOrientation
{
    /// <summary>Orientations 5-8 store the picture on its side: width and height swap.</summary>
    public static bool SwapsAxes(SKEncodedOrigin origin) => origin is SKEncodedOrigin.LeftTop
        or SKEncodedOrigin.RightTop
        or SKEncodedOrigin.RightBottom or SKEncodedOrigin.LeftBottom;

    /// <summary>The common case (no rotation): RGBA to RGB, 4 pixels per shuffle where the CPU has one.</summary>
    static void DropAlpha(byte[] rgba, byte[] rgb)
    {
        int i = 0, j = 0;
        if (Vector128.IsHardwareAccelerated)
        {
            var keep = Vector128.Create((byte)0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 0, 0, 0, 0);
            // Each step writes 16 bytes of which the first 12 are pixels; the next step overwrites the other 4.
            for (; j + 16 <= rgb.Length; i += 16, j += 12)
                Vector128.Shuffle(Vector128.Create(rgba, i), keep).CopyTo(rgb, j);
        }
        for (; j < rgb.Length; i += 4, j += 3)
        {
            rgb[j] = rgba[i];
            rgb[j + 1] = rgba[i + 1];
            rgb[j + 2] = rgba[i + 2];
        }
    }

    /// <param name="rgba">Stored pixels, w x h, 4 bytes each (the buffer may be longer).</param>
    public static RgbImage ToUprightRgb(byte[] rgba, int w, int h, SKEncodedOrigin origin)
    {
        bool swap = SwapsAxes(origin);
        int outW = swap ? h : w, outH = swap ? w : h;
        var rgb = new byte[checked(outW * outH * 3)];
        if (origin is SKEncodedOrigin.TopLeft or SKEncodedOrigin.Default)
        {
            DropAlpha(rgba, rgb);
            return new RgbImage(outW, outH, rgb);
        }
        // Upright pixel (x, y) comes from stored pixel (sx, sy) = (x0 + x * dxx + y * dxy, y0 + x * dyx + y * dyy).
        var (x0, dxx, dxy, y0, dyx, dyy) = origin switch
        {
            SKEncodedOrigin.TopRight => (w - 1, -1, 0, 0, 0, 1),          // 2: mirrored left-right
            SKEncodedOrigin.BottomRight => (w - 1, -1, 0, h - 1, 0, -1),  // 3: rotated 180
            SKEncodedOrigin.BottomLeft => (0, 1, 0, h - 1, 0, -1),        // 4: mirrored top-bottom
            SKEncodedOrigin.LeftTop => (0, 0, 1, 0, 1, 0),                // 5: transposed
            SKEncodedOrigin.RightTop => (0, 0, 1, h - 1, -1, 0),          // 6: shown rotated 90 clockwise
            SKEncodedOrigin.RightBottom => (w - 1, 0, -1, h - 1, -1, 0),  // 7: transverse
            SKEncodedOrigin.LeftBottom => (w - 1, 0, -1, 0, 1, 0),        // 8: shown rotated 90 counter-clockwise
            _ => throw new ArgumentOutOfRangeException(nameof(origin), origin, "unknown EXIF orientation"),
        };
        int j2 = 0;
        for (int y = 0; y < outH; y++)
        {
            int sx = x0 + y * dxy, sy = y0 + y * dyy;
            for (int x = 0; x < outW; x++, sx += dxx, sy += dyx, j2 += 3)
            {
                int i = 4 * (sy * w + sx);
                rgb[j2] = rgba[i];
                rgb[j2 + 1] = rgba[i + 1];
                rgb[j2 + 2] = rgba[i + 2];
            }
        }
        return new RgbImage(outW, outH, rgb);
    }
}
