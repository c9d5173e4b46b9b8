using RetinaNet.Data;
using RetinaNet.Data.Imaging;
using Xunit;
using static RetinaNet.Tests.Data.Imaging.TestImages;

namespace RetinaNet.Tests.Data.Imaging;

public class DrawingTests
{
    static readonly (byte, byte, byte) Green = (0, 255, 0), Black = (0, 0, 0);

    static RgbImage Blank(int w = 100, int h = 80) => new(w, h, new byte[w * h * 3]);

    static IEnumerable<(int X, int Y)> Area(int left, int top, int right, int bottom) =>
        Enumerable.Range(top, bottom - top).SelectMany(y => Enumerable.Range(left, right - left).Select(x => (x, y)));

    [Fact]
    public void BoxEdgesHaveTheColourAndTheInsideDoesNot()
    {
        var img = Blank();
        Drawing.DrawBox(img, 20, 30, 60, 70, Green, thickness: 2);
        foreach (var (x, y) in new[] { (20, 30), (21, 31), (59, 30), (40, 30), (40, 31), (40, 69), (40, 68), (20, 50),
            (59, 50), (58, 50), (59, 69) })
            Assert.Equal(Green, At(img, x, y));
        foreach (var (x, y) in new[] { (40, 50), (22, 32), (57, 67), (40, 32), (19, 50), (60, 50), (40, 29), (40, 70) })
            Assert.Equal(Black, At(img, x, y));
    }

    [Fact]
    public void BoxesOutsideTheImageAreClipped()
    {
        var img = Blank(10, 10);
        Drawing.DrawBox(img, -5, -5, 50, 50, Green);       // every edge outside: nothing drawn
        Drawing.DrawBox(img, float.NaN, 0, 5, 5, Green);
        Assert.All(img.Pixels, b => Assert.Equal(0, b));
        Drawing.DrawBox(img, -5, 2, 5, 8, Green, 1);       // left edge off the image, right edge at x=4
        Assert.Equal(Green, At(img, 4, 5));
        Assert.Equal(Black, At(img, 0, 5));
    }

    [Fact]
    public void FilledRectCoversExactlyItsPixels()
    {
        var img = Blank(6, 5);
        Drawing.DrawFilledRect(img, 1, 2, 4, 4, (9, 8, 7));
        for (int y = 0; y < 5; y++)
            for (int x = 0; x < 6; x++)
                Assert.Equal(x is >= 1 and < 4 && y is >= 2 and < 4 ? ((byte)9, (byte)8, (byte)7) : Black,
                    At(img, x, y));
    }

    [Fact]
    public void LabelSitsAboveTheAnchorWithReadableText()
    {
        var img = Blank();
        Drawing.DrawLabel(img, 20, 40, "cat 0.93", Green);
        // Background fills a strip just above the anchor, about as high as the 13-pixel font; below the anchor and
        // left of it nothing changed.
        int top = 39;
        while (top > 0 && At(img, 20, top - 1) == Green) top--;
        Assert.InRange(40 - top, 16, 24);
        Assert.Equal(Black, At(img, 20, top - 1));
        Assert.Equal(Black, At(img, 20, 40));
        Assert.Equal(Black, At(img, 19, 39));
        int right = 20;
        while (right < img.Width && At(img, right, 39) == Green) right++;
        Assert.InRange(right - 20, 50, 80); // "cat 0.93": 8 characters of DejaVu Sans
        // Text in dark ink (on a light background) inside the strip; mostly background.
        var strip = Area(20, top, right, 40).Select(p => At(img, p.X, p.Y)).ToList();
        Assert.True(strip.Count(p => p.Item2 < 100) > 30, "dark text");
        Assert.True(strip.Count(p => p == Green) > strip.Count / 2, "mostly background");
        // Everywhere else untouched.
        Assert.All(Area(0, 0, img.Width, img.Height).Where(p => !(p.X >= 20 && p.X < right && p.Y >= top && p.Y < 40)),
            p => Assert.Equal(Black, At(img, p.X, p.Y)));
    }

    [Fact]
    public void LabelAtTheTopGoesBelowAndStaysInside()
    {
        var img = Blank(48, 40);
        Drawing.DrawLabel(img, 35, 0, "dog", (0, 0, 200));
        // No room above y=0: the label is drawn below it, shifted left to end at the right border, in white ink.
        Assert.Equal((0, 0, 200), At(img, 47, 0));
        Assert.Equal((0, 0, 200), At(img, 47, 15));
        Assert.Equal(Black, At(img, 47, 25));
        Assert.Equal(Black, At(img, 0, 0));
        var label = Area(0, 0, 48, 16).Select(p => At(img, p.X, p.Y)).ToList();
        Assert.True(label.Count(p => p.Item1 > 150 && p.Item2 > 150) > 10, "white text");
    }

    [Fact]
    public void LabelSizeMustBePositive()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Drawing.DrawLabel(Blank(), 1, 1, "x", Green, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Drawing.DrawLabel(Blank(), 1, 1, "x", Green, float.NaN));
        var img = Blank();
        Drawing.DrawLabel(img, float.NaN, 1, "x", Green);
        Drawing.DrawLabel(img, 1, 1, "", Green);
        Assert.All(img.Pixels, b => Assert.Equal(0, b));
    }
}

public class RotatedDrawingTests
{
    static (byte, byte, byte) At(RetinaNet.Data.RgbImage image, double x, double y)
    {
        int i = ((int)Math.Round(y) * image.Width + (int)Math.Round(x)) * 3;
        return (image.Pixels[i], image.Pixels[i + 1], image.Pixels[i + 2]);
    }

    [Fact]
    public void RotatedDetectionsAndGroundTruthAreDrawnAsTheirTurnedOutlines()
    {
        var image = new RetinaNet.Data.RgbImage(100, 100, new byte[100 * 100 * 3]);
        var categories = new RetinaNet.Data.Coco.CategoryMap([new RetinaNet.Data.Coco.CocoCategory(1, "bar")]);
        // 40 x 10 box centred at (50, 50), turned 0.5 rad anticlockwise on screen: its right end's midpoint moves to
        // (50 + 20 cos 0.5, 50 - 20 sin 0.5) = (67.55, 40.41); the unturned box's right end (70, 50) is left blank
        var detection = new RetinaNet.Data.Coco.CocoDetection(1, 1, 30, 45, 40, 10, 0.9, 0.5);
        RetinaNet.Data.Imaging.DetectionPictures.Draw(image, [detection], [], categories, 0.5);
        var colour = RetinaNet.Data.Imaging.DetectionPictures.ColorOf(0);
        Assert.Equal(colour, At(image, 50 + 20 * Math.Cos(0.5), 50 - 20 * Math.Sin(0.5)));
        Assert.Equal(((byte)0, (byte)0, (byte)0), At(image, 70, 50));
        Assert.Equal(((byte)0, (byte)0, (byte)0), At(image, 50, 50)); // an outline, not filled

        var gt = new RetinaNet.Data.Coco.CocoAnnotation(1, 1, 1, 30, 45, 40, 10, 400, false, -0.5);
        var second = new RetinaNet.Data.RgbImage(100, 100, new byte[100 * 100 * 3]);
        RetinaNet.Data.Imaging.DetectionPictures.Draw(second, [], [gt], categories, 0.5);
        // 1-pixel lines: the edge passes within a pixel of the point
        double gx = 50 + 20 * Math.Cos(0.5), gy = 50 + 20 * Math.Sin(0.5);
        Assert.Contains(RetinaNet.Data.Imaging.DetectionPictures.GroundTruthColor,
            from dx in new[] { -1, 0, 1 } from dy in new[] { -1, 0, 1 } select At(second, gx + dx, gy + dy));
        Assert.Equal(((byte)0, (byte)0, (byte)0), At(second, 70, 50));
    }
}
