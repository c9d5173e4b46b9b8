namespace RetinaNet.Data.Imaging;

/// <summary>A line chart drawn into an <see cref="RgbImage"/>: a plot area at (left, top) of width x height pixels
/// over the value ranges x and y, a grey grid of 10 steps, black axes, axis labels, and series as 2-pixel lines with a
/// legend at the top right. Hand-drawn on our Drawing primitives: the two charts we make (PR curves, training results)
/// need nothing a plotting library would add, and the images stay free of another native dependency.</summary>
public sealed class LinePlot(RgbImage image, int left, int top, int width, int height, (double Lo, double Hi) x,
    (double Lo, double Hi) y)
{
    static readonly (byte, byte, byte) White = (255, 255, 255), Black = (0, 0, 0), Grid = (220, 220, 220);

    public int X(double v) => left + (int)Math.Round((v - x.Lo) / (x.Hi - x.Lo) * width);
    public int Y(double v) => top + (int)Math.Round((1 - (v - y.Lo) / (y.Hi - y.Lo)) * height);

    /// <summary>Grid, axes, the x label under the plot's centre and the y label above its top-left corner.</summary>
    public void Axes(string yLabel, string xLabel)
    {
        for (int i = 0; i <= 10; i++)
        {
            int gx = left + (int)Math.Round(i / 10.0 * width), gy = top + (int)Math.Round(i / 10.0 * height);
            Drawing.DrawLine(image, gx, top, gx, top + height, Grid);
            Drawing.DrawLine(image, left, gy, left + width, gy, Grid);
        }
        Drawing.DrawLine(image, left, top + height, left + width, top + height, Black, 2);
        Drawing.DrawLine(image, left, top, left, top + height, Black, 2);
        Drawing.DrawLabel(image, left + width / 2 - 30, Math.Min(image.Height - 2, top + height + 42), xLabel, White);
        Drawing.DrawLabel(image, Math.Max(0, left - 56), top, yLabel, White, 11); // above the plot: clear of the axis
    }

    /// <summary>One series as a 2-pixel line through its points (non-finite ones skipped), its name in the legend's
    /// <paramref name="slot"/>-th row.</summary>
    public void Series(IReadOnlyList<(double X, double Y)> points, string name, (byte R, byte G, byte B) color,
        int slot)
    {
        for (int i = 1; i < points.Count; i++)
        {
            var (x0, y0) = points[i - 1];
            var (x1, y1) = points[i];
            if (double.IsFinite(y0) && double.IsFinite(y1)) Drawing.DrawLine(image, X(x0), Y(y0), X(x1), Y(y1), color,
                2);
        }
        if (points.Count == 1 && double.IsFinite(points[0].Y))
            Drawing.DrawFilledRect(image, X(points[0].X) - 2, Y(points[0].Y) - 2, X(points[0].X) + 3, Y(points[0].Y)
                + 3, color);
        Drawing.DrawLabel(image, left + width - 200, top + 24 + 18 * slot, name, color, 12);
    }
}
