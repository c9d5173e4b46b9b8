using RetinaNet.Data;
using RetinaNet.Data.Converters;
using Xunit;

namespace RetinaNet.Tests.Data;

public class ImageHeaderTests
{
    readonly string dir = Paths.TempDir();

    ImageSize Read(byte[] bytes) => ImageHeader.Read(TestImages.Write(dir, Guid.NewGuid().ToString("N"), bytes));

    [Fact] public void Png() => Assert.Equal(new ImageSize(7, 5), Read(TestImages.Png(7, 5)));
    [Fact] public void Jpeg() => Assert.Equal(new ImageSize(640, 480), Read(TestImages.Jpeg(640, 480)));
    [Fact] public void JpegOrientationUpright() =>
        Assert.Equal(new ImageSize(640, 480), Read(TestImages.Jpeg(640, 480, orientation: 3)));
    [Fact] public void JpegRotatedByExifSwapsSides() =>
        Assert.Equal(new ImageSize(480, 640), Read(TestImages.Jpeg(640, 480, orientation: 6)));
    [Fact] public void BmpBottomUp() => Assert.Equal(new ImageSize(9, 4), Read(TestImages.Bmp(9, 4)));
    [Fact] public void BmpTopDown() => Assert.Equal(new ImageSize(9, 4), Read(TestImages.Bmp(9, -4)));
    [Fact] public void BmpCoreHeader() => Assert.Equal(new ImageSize(300, 2), Read(TestImages.BmpCore(300, 2)));

    [Fact]
    public void RecognisesTheFormatByContentNotExtension() =>
        Assert.Equal(new ImageSize(3, 2),
            ImageHeader.Read(TestImages.Write(dir, "really_a_png.jpg", TestImages.Png(3, 2))));

    [Fact]
    public void BadHeadersNameTheFile()
    {
        var garbage = TestImages.Write(dir, "x.jpg", "GIF89a......"u8.ToArray());
        var e = Assert.Throws<BadInputException>(() => ImageHeader.Read(garbage));
        CocoFileTests.AssertOneLine(e, garbage, "not a JPEG, PNG or BMP image");
        var truncated = TestImages.Write(dir, "t.png", TestImages.Png(3, 2)[..12]);
        CocoFileTests.AssertOneLine(Assert.Throws<BadInputException>(() => ImageHeader.Read(truncated)), truncated,
            "truncated");
        var noSof = TestImages.Write(dir, "n.jpg", [0xFF, 0xD8, 0xFF, 0xDA, 0, 2, 0xFF, 0xD9]);
        CocoFileTests.AssertOneLine(Assert.Throws<BadInputException>(() => ImageHeader.Read(noSof)), noSof,
            "no frame header");
        var zero = TestImages.Write(dir, "z.png", TestImages.Png(0, 2));
        CocoFileTests.AssertOneLine(Assert.Throws<BadInputException>(() => ImageHeader.Read(zero)), zero,
            "size of 0x2");
    }
}
