using RetinaNet.Data;
using RetinaNet.Data.Imaging;
using Xunit;
using static RetinaNet.Tests.Data.Imaging.TestImages;

namespace RetinaNet.Tests.Data.Imaging;

public class DrawingTests
{
    static readonly (byte, byte, byte) Green = (0, 255, 0), Black = (0, 0, 0);

    static RgbImage Blank(int w = 100, int h = 80) => new(w, h, new byte[w * h * 3]);

    [Fact]
    public void BoxEdgesHaveTheColourAndTheInsideDoesNot()
    {
        var img = Blank();
        Drawing.DrawBox(img, 20, 30, 60, 70, Green, thickness: 2);
        foreach (var (x, y) in new[] { (20, 30), (21, 31), (59, 30), (40, 30), (40, 31), (40, 69), (40, 68), (20, 50), (59, 50), (58, 50), (59, 69) })
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
                Assert.Equal(x is >= 1 and < 4 && y is >= 2 and < 4 ? ((byte)9, (byte)8, (byte)7) : Black, At(img, x, y));
    }

    [Fact]
    public void LabelSitsAboveTheAnchorWithReadableText()
    {
        var img = Blank();
        Drawing.DrawLabel(img, 20, 40, "cat 0.93", Green, scale: 1);
        // Background fills the 9-pixel-high strip just above the anchor; below the anchor nothing changed.
        Assert.Equal(Green, At(img, 20, 39));
        Assert.Equal(Green, At(img, 20, 31));
        Assert.Equal(Black, At(img, 20, 40));
        Assert.Equal(Black, At(img, 20, 30));
        // Text in black (dark ink on a light background) inside the strip: the 'c' of "cat" has ink on its row 3.
        var strip = Enumerable.Range(31, 9).SelectMany(y => Enumerable.Range(20, 47).Select(x => At(img, x, y))).ToList();
        Assert.Contains(Black, strip);
        Assert.True(strip.Count(p => p == Green) > strip.Count / 2, "mostly background");
    }

    [Fact]
    public void LabelAtTheTopGoesBelowAndStaysInside()
    {
        var img = Blank(40, 40);
        Drawing.DrawLabel(img, 35, 0, "dog", (0, 0, 200), scale: 1);
        // No room above y=0: the label is drawn below it, shifted left to end at the right border.
        Assert.Equal((0, 0, 200), At(img, 39, 0));
        Assert.Contains(((byte)255, (byte)255, (byte)255), Enumerable.Range(0, 9).SelectMany(y => Enumerable.Range(20, 20).Select(x => At(img, x, y))));
    }
}
