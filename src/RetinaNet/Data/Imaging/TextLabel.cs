using SkiaSharp;

namespace RetinaNet.Data.Imaging;

/// <summary>Text on a filled box (a detection's "name score"), in the embedded font: measured, placed beside an
/// anchor inside bounds, and drawn in black or white, whichever reads better on the box's colour.</summary>
static class TextLabel
{
    /// <summary>Padding around the text: a quarter of the font size left and right, an eighth above and
    /// below.</summary>
    static (int X, int Y) Padding(SKFont font) =>
        ((int)MathF.Ceiling(font.Size / 4), (int)MathF.Ceiling(font.Size / 8));

    /// <summary>The box around <paramref name="text"/>: its advance width and the font's ascent and descent (the same
    /// height for every text of the font), plus padding.</summary>
    public static (int Width, int Height) Measure(SKFont font, string text)
    {
        var (px, py) = Padding(font);
        var metrics = font.Metrics;
        return ((int)MathF.Ceiling(font.MeasureText(text)) + 2 * px,
            (int)MathF.Ceiling(metrics.Descent - metrics.Ascent) + 2 * py);
    }

    /// <summary>Top-left corner of a <paramref name="width"/> x <paramref name="height"/> box whose bottom-left corner
    /// is at the anchor (above a detection box whose top-left corner is the anchor); where there is no room above it
    /// within <paramref name="bounds"/> it goes below the anchor instead, and it is shifted left or right to stay
    /// inside them.</summary>
    public static (int Left, int Top) Place(int width, int height, float anchorX, float anchorY, SKRectI bounds)
    {
        int x = (int)MathF.Round(Math.Clamp(anchorX, bounds.Left, bounds.Right));
        int y = (int)MathF.Round(Math.Clamp(anchorY, bounds.Top, bounds.Bottom));
        int top = y - height >= bounds.Top ? y - height : y;
        int left = Math.Max(bounds.Left, Math.Min(x, bounds.Right - width));
        return (left, top);
    }

    /// <summary>Fills the box (from <see cref="Measure"/>) at (left, top) with <paramref name="background"/> and draws
    /// the text on it.</summary>
    public static void Draw(SKCanvas canvas, SKFont font, string text, int left, int top, SKColor background)
    {
        var (width, height) = Measure(font, text);
        var (px, py) = Padding(font);
        using var fill = new SKPaint { Color = background, IsAntialias = false };
        canvas.DrawRect(left, top, width, height, fill);
        using var ink = new SKPaint { Color = InkOn(background), IsAntialias = true };
        canvas.DrawText(text, left + px, top + py - font.Metrics.Ascent, SKTextAlign.Left, font, ink);
    }

    /// <summary>Black on light colours, white on dark ones (ITU-R BT.601 luma).</summary>
    public static SKColor InkOn(SKColor background) =>
        0.299 * background.Red + 0.587 * background.Green + 0.114 * background.Blue > 140
            ? SKColors.Black : SKColors.White;
}
