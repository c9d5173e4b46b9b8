using RetinaNet.Data;
using RetinaNet.Data.Imaging;
using static RetinaNet.Evaluation.CocoEvalParams;

namespace RetinaNet.Evaluation;

/// <summary><c>evaluate --pr-curves</c>: precision against recall per category at IoU 0.5 (all areas, 100 detections),
/// from COCOeval's interpolated precision at its 101 recall points, one colour per category with a legend.</summary>
public static class PrCurvePlot
{
    public const int Left = 60, Top = 20, Right = 20, Bottom = 50;
    static readonly (byte, byte, byte) White = (255, 255, 255), Black = (0, 0, 0), Grid = (220, 220, 220);

    public static RgbImage Render(CocoEvalResult result, int width = 800, int height = 600)
    {
        var image = new RgbImage(width, height, Enumerable.Repeat((byte)255, width * height * 3).ToArray());
        int plotW = width - Left - Right, plotH = height - Top - Bottom;
        int X(double recall) => Left + (int)Math.Round(recall * plotW);
        int Y(double precision) => Top + (int)Math.Round((1 - precision) * plotH);
        for (int i = 0; i <= 10; i++)
        {
            Drawing.DrawLine(image, X(i / 10.0), Top, X(i / 10.0), Top + plotH, Grid);
            Drawing.DrawLine(image, Left, Y(i / 10.0), Left + plotW, Y(i / 10.0), Grid);
        }
        Drawing.DrawLine(image, Left, Top + plotH, Left + plotW, Top + plotH, Black, 2);
        Drawing.DrawLine(image, Left, Top, Left, Top + plotH, Black, 2);
        Drawing.DrawLabel(image, Left + plotW / 2 - 30, height - 8, "recall", White);
        Drawing.DrawLabel(image, 4, Top, "precision", White, 11); // above the plot: clear of the axis
        int t = IouIndex(0.5), a = 0, m = M - 1;
        for (int k = 0; k < result.PerCategory.Count; k++)
        {
            if (result.PerCategory[k].GtCount == 0) continue;
            var color = DetectionPictures.ColorOf(k);
            for (int r = 1; r < R; r++)
            {
                double p0 = Math.Max(0, result.Precision(t, r - 1, k, a, m)), p1 = Math.Max(0, result.Precision(t, r, k, a, m));
                Drawing.DrawLine(image, X(RecallThresholds[r - 1]), Y(p0), X(RecallThresholds[r]), Y(p1), color, 2);
            }
            var c = result.PerCategory[k];
            string label = $"{c.Name} AP50 {c.Ap50:0.000}";
            Drawing.DrawLabel(image, Left + plotW - 200, Top + 24 + 18 * k, label, color, 12);
        }
        return image;
    }
}
