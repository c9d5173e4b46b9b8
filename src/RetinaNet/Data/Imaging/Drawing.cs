using SkiaSharp;

namespace RetinaNet.Data.Imaging;

/// <summary>Draws detections into an <see cref="RgbImage"/> in place: box outlines, filled rectangles and text labels
/// on a filled background. Everything is clipped to the image; nothing throws for boxes partly or wholly outside.
/// <see cref="ContactSheet"/> draws the same things, enlarged, on a Skia canvas.</summary>
public static class Drawing
{
    /// <summary>Fills pixels x1 &lt;= x &lt; x2, y1 &lt;= y &lt; y2.</summary>
    public static void DrawFilledRect(RgbImage img, int x1, int y1, int x2, int y2, (byte R, byte G, byte B) color)
    {
        x1 = Math.Max(x1, 0); y1 = Math.Max(y1, 0);
        x2 = Math.Min(x2, img.Width); y2 = Math.Min(y2, img.Height);
        var px = img.Pixels;
        for (int y = y1; y < y2; y++)
            for (int i = 3 * (y * img.Width + x1), end = 3 * (y * img.Width + x2); i < end; i += 3)
            {
                px[i] = color.R;
                px[i + 1] = color.G;
                px[i + 2] = color.B;
            }
    }

    /// <summary>A straight line from (x0, y0) to (x1, y1) (Bresenham), <paramref name="thickness"/> pixels square per
    /// point, clipped to the image.</summary>
    public static void DrawLine(RgbImage img, int x0, int y0, int x1, int y1, (byte R, byte G, byte B) color,
        int thickness = 1)
    {
        int dx = Math.Abs(x1 - x0), dy = -Math.Abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx
            + dy;
        int half = thickness / 2;
        while (true)
        {
            DrawFilledRect(img, x0 - half, y0 - half, x0 - half + thickness, y0 - half + thickness, color);
            if (x0 == x1 && y0 == y1) return;
            int e2 = 2 * err;
            if (e2 >= dy) { err += dy; x0 += sx; }
            if (e2 <= dx) { err += dx; y0 += sy; }
        }
    }

    /// <summary>Outline of the box (x1, y1)-(x2, y2) in pixel coordinates (a detector's output),
    /// <paramref name="thickness"/> pixels wide, drawn inside the rounded box edges.</summary>
    public static void DrawBox(RgbImage img, float x1, float y1, float x2, float y2, (byte R, byte G, byte B) color,
        int thickness = 2)
    {
        if (thickness < 1) throw new ArgumentOutOfRangeException(nameof(thickness), thickness,
            "thickness must be at least 1");
        if (!(float.IsFinite(x1) && float.IsFinite(y1) && float.IsFinite(x2) && float.IsFinite(y2))) return;
        // Huge coordinates are clamped in Round so the int arithmetic below cannot overflow.
        int l = Round(Math.Min(x1, x2), img.Width), r = Round(Math.Max(x1, x2), img.Width);
        int t = Round(Math.Min(y1, y2), img.Height), b = Round(Math.Max(y1, y2), img.Height);
        if (r <= l || b <= t) return;
        int tx = Math.Min(thickness, r - l), ty = Math.Min(thickness, b - t);
        DrawFilledRect(img, l, t, r, t + ty, color);
        DrawFilledRect(img, l, b - ty, r, b, color);
        DrawFilledRect(img, l, t, l + tx, b, color);
        DrawFilledRect(img, r - tx, t, r, b, color);
    }

    /// <summary>Outline of a closed polygon x0, y0, x1, y1, ... (a rotated box's corners), lines
    /// <paramref name="thickness"/> pixels wide, clipped to the image.</summary>
    public static void DrawPolygon(RgbImage img, ReadOnlySpan<double> xy, (byte R, byte G, byte B) color,
        int thickness = 2)
    {
        if (thickness < 1) throw new ArgumentOutOfRangeException(nameof(thickness), thickness,
            "thickness must be at least 1");
        int n = xy.Length / 2;
        for (int i = 0; i < xy.Length; i++) if (!double.IsFinite(xy[i])) return;
        // Bresenham over clamped ends: a corner far outside the image must not take millions of steps
        int Clamp(double v, int size) => (int)Math.Round(Math.Clamp(v, -4.0 * size, 5.0 * size));
        for (int i = 0; i < n; i++)
        {
            int j = (i + 1) % n;
            DrawLine(img, Clamp(xy[2 * i], img.Width), Clamp(xy[2 * i + 1], img.Height),
                Clamp(xy[2 * j], img.Width), Clamp(xy[2 * j + 1], img.Height), color, thickness);
        }
    }

    /// <summary>Font size of <see cref="DrawLabel"/>'s text by default, in pixels per em: 20-pixel-high
    /// labels.</summary>
    public const float LabelSize = 13;

    /// <summary>Text on a box of <paramref name="color"/>, in black or white (whichever reads better on it), with its
    /// bottom-left corner at (x, y): above a detection box whose top-left corner is (x, y). Where there is no room
    /// above, it goes below y instead; it is shifted left to stay inside the image. The text is drawn by Skia in the
    /// embedded font (<see cref="EmbeddedFont"/>), <paramref name="size"/> pixels per em.</summary>
    public static void DrawLabel(RgbImage img, float x, float y, string text, (byte R, byte G, byte B) color,
        float size = LabelSize)
    {
        if (!(size > 0 && float.IsFinite(size)))
            throw new ArgumentOutOfRangeException(nameof(size), size, "font size must be positive");
        if (text.Length == 0 || !float.IsFinite(x) || !float.IsFinite(y)) return;
        using var font = EmbeddedFont.Create(size);
        var (w, h) = TextLabel.Measure(font, text);
        var (left, top) = TextLabel.Place(w, h, x, y, new SKRectI(0, 0, img.Width, img.Height));
        // Only the label goes through Skia, in a bitmap of its own, copied in: the image is not converted.
        using var label = new SKBitmap(SkiaPixels.InfoOf(w, h));
        using (var canvas = new SKCanvas(label))
            TextLabel.Draw(canvas, font, text, 0, 0, SkiaPixels.ToSk(color));
        var src = label.GetPixelSpan();
        var px = img.Pixels;
        int x1 = Math.Max(left, 0), x2 = Math.Min(left + w, img.Width);
        for (int row = Math.Max(top, 0); row < Math.Min(top + h, img.Height); row++)
            for (int col = x1; col < x2; col++)
            {
                int i = 4 * ((row - top) * w + col - left), j = 3 * (row * img.Width + col);
                (px[j], px[j + 1], px[j + 2]) = (src[i], src[i + 1], src[i + 2]);
            }
    }

    // Clamped well outside the image (not to its border) so an off-image edge stays off the image.
    static int Round(float v, int limit) => (int)MathF.Round(Math.Clamp(v, -(1 << 20), limit + (1 << 20)));
}
