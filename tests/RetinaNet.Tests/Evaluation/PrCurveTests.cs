using RetinaNet.Cli;
using RetinaNet.Data.Imaging;
using RetinaNet.Evaluation;
using Xunit;

namespace RetinaNet.Tests.Evaluation;

public class PrCurveTests
{
    [Fact]
    public void APerfectDetectorPlotsAFlatLineAtPrecisionOneAcrossAllRecall()
    {
        var dir = Paths.TempDir();
        File.WriteAllText(Path.Combine(dir, "gt.json"),
            """{"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}], "categories": [{"id": 3, "name": "cat"}, {"id": 4, "name": "dog"}], "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 10, 40, 40], "area": 1600, "iscrowd": 0}]}""");
        File.WriteAllText(Path.Combine(dir, "dt.json"),
            """[{"image_id": 1, "category_id": 3, "bbox": [10, 10, 40, 40], "score": 0.9}]""");
        var plot = Path.Combine(dir, "pr.png");
        Assert.Equal(CommandLine.Ok, CommandLine.Run(["evaluate", "--annotations", Path.Combine(dir, "gt.json"),
            "--detections", Path.Combine(dir, "dt.json"), "--pr-curves", plot], TextWriter.Null, TextWriter.Null));
        var image = ImageDecoder.Decode(plot);
        (byte, byte, byte) At(int x, int y)
        {
            int i = 3 * (y * image.Width + x); return (image.Pixels[i], image.Pixels[i + 1], image.Pixels[i + 2]);
        }
        int plotW = image.Width - PrCurvePlot.Left - PrCurvePlot.Right;
        // precision 1 at every recall point: the class colour along the top edge of the plot, from recall 0.1 to 0.9
        for (double recall = 0.1; recall < 0.95; recall += 0.2)
            Assert.Equal(DetectionPictures.ColorOf(0), At(PrCurvePlot.Left + (int)(recall * plotW), PrCurvePlot.Top));
        // the category without ground truth ("dog") has no curve: nothing in its colour halfway down the plot
        int midY = PrCurvePlot.Top + (image.Height - PrCurvePlot.Top - PrCurvePlot.Bottom) / 2;
        Assert.DoesNotContain(Enumerable.Range(PrCurvePlot.Left + 3, plotW - 6).Select(x => At(x, midY)),
            p => p == DetectionPictures.ColorOf(1));
    }
}
