using RetinaNet.Data;
using RetinaNet.Data.Imaging;
using static RetinaNet.Evaluation.CocoEvalParams;

namespace RetinaNet.Evaluation;

/// <summary><c>evaluate --pr-curves</c>: precision against recall per category at IoU 0.5 (all areas, 100 detections),
/// from COCOeval's interpolated precision at its 101 recall points, one colour per category with a legend.</summary>
public static class PrCurvePlot
{
    public const int Left = 60, Top = 20, Right = 20, Bottom = 50;

    public static RgbImage Render(CocoEvalResult result, int width = 800, int height = 600)
    {
        var image = new RgbImage(width, height, Enumerable.Repeat((byte)255, width * height * 3).ToArray());
        var plot = new LinePlot(image, Left, Top, width - Left - Right, height - Top - Bottom, (0, 1), (0, 1));
        plot.Axes("precision", "recall");
        int t = IouIndex(0.5), a = 0, m = M - 1;
        for (int k = 0; k < result.PerCategory.Count; k++)
        {
            var c = result.PerCategory[k];
            if (c.GtCount == 0) continue;
            var points = Enumerable.Range(0,
                R).Select(r => (RecallThresholds[r], Math.Max(0, result.Precision(t, r, k, a, m)))).ToArray();
            plot.Series(points, $"{c.Name} AP50 {c.Ap50:0.000}", DetectionPictures.ColorOf(k), k);
        }
        return image;
    }
}
