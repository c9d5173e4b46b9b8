using RetinaNet.Data.Imaging;
using Xunit;
using static RetinaNet.Tests.Data.Imaging.TestImages;

namespace RetinaNet.Tests.Data.Imaging;

/// <summary>Every PNG colour type, written byte-exact here, decodes to the known 8-bit RGB values.</summary>
public class PngDecodeTests
{
    [Fact]
    public void Rgb8IsExact()
    {
        var expected = Gradient(7, 5);
        var rows = Enumerable.Range(0, 5).Select(y => expected.Pixels.AsSpan(y * 21, 21).ToArray()).ToArray();
        var image = ImageDecoder.Decode(Png(7, 5, colorType: 2, bitDepth: 8, rows), "rgb.png");
        Assert.Equal((7, 5), (image.Width, image.Height));
        Assert.Equal(expected.Pixels, image.Pixels);
    }

    [Fact]
    public void GreyscaleGivesEqualChannels()
    {
        byte[][] rows = [[0, 50, 255], [1, 128, 254]];
        var image = ImageDecoder.Decode(Png(3, 2, colorType: 0, bitDepth: 8, rows), "grey.png");
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 3; x++) Assert.Equal((rows[y][x], rows[y][x], rows[y][x]), At(image, x, y));
    }

    [Fact]
    public void PaletteIsExpanded()
    {
        byte[] palette = [255, 0, 0, 0, 200, 0, 12, 34, 56];
        byte[][] rows = [[0, 1, 2, 1], [2, 2, 0, 0]];
        var image = ImageDecoder.Decode(Png(4, 2, colorType: 3, bitDepth: 8, rows, plte: palette), "palette.png");
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 4; x++)
            {
                int k = 3 * rows[y][x];
                Assert.Equal((palette[k], palette[k + 1], palette[k + 2]), At(image, x, y));
            }
    }

    [Fact]
    public void SixteenBitRgbIsRoundedToEightBits()
    {
        // Samples chosen so every sensible 16->8 reduction (>> 8, or round(v / 257)) gives the same byte.
        ushort[] samples = [0x0000, 0xFFFF, 0x8080, 0x1212, 0xC8C8, 0x3434];
        var row = samples.SelectMany(s => new[] { (byte)(s >> 8), (byte)s }).ToArray();
        var image = ImageDecoder.Decode(Png(2, 1, colorType: 2, bitDepth: 16, [row]), "rgb16.png");
        Assert.Equal(new byte[] { 0x00, 0xFF, 0x80, 0x12, 0xC8, 0x34 }, image.Pixels);
    }

    [Fact]
    public void SixteenBitGreyIsRoundedToEightBits()
    {
        byte[] row = [0x40, 0x40, 0xFF, 0xFF];
        var image = ImageDecoder.Decode(Png(2, 1, colorType: 0, bitDepth: 16, [row]), "grey16.png");
        Assert.Equal(new byte[] { 0x40, 0x40, 0x40, 0xFF, 0xFF, 0xFF }, image.Pixels);
    }

    [Fact]
    public void AlphaIsDroppedKeepingTheStoredColour()
    {
        // Opaque, half and fully transparent pixels: the colour channels come through unchanged (not premultiplied).
        byte[] row = [200, 100, 50, 255, 200, 100, 50, 128, 10, 20, 30, 0];
        var image = ImageDecoder.Decode(Png(3, 1, colorType: 6, bitDepth: 8, [row]), "rgba.png");
        Assert.Equal(new byte[] { 200, 100, 50, 200, 100, 50, 10, 20, 30 }, image.Pixels);
    }

    [Fact]
    public void GreyWithAlphaGivesEqualChannels()
    {
        byte[] row = [90, 255, 180, 0];
        var image = ImageDecoder.Decode(Png(2, 1, colorType: 4, bitDepth: 8, [row]), "grey-alpha.png");
        Assert.Equal(new byte[] { 90, 90, 90, 180, 180, 180 }, image.Pixels);
    }

    [Fact]
    public void PaletteWithTransparencyKeepsThePaletteColour()
    {
        byte[] palette = [10, 20, 30, 40, 50, 60];
        var image = ImageDecoder.Decode(Png(2, 1, colorType: 3, bitDepth: 8, [[0, 1]], plte: palette, trns: [0, 255]),
            "palette-trns.png");
        Assert.Equal(palette, image.Pixels);
    }

    [Fact]
    public void SixteenBitRgbaDropsAlpha()
    {
        byte[] row = [0xFF, 0xFF, 0x80, 0x80, 0x00, 0x00, 0x00, 0x00, 0x12, 0x12, 0x34, 0x34, 0x56, 0x56, 0x80, 0x00];
        var image = ImageDecoder.Decode(Png(2, 1, colorType: 6, bitDepth: 16, [row]), "rgba16.png");
        Assert.Equal(new byte[] { 0xFF, 0x80, 0x00, 0x12, 0x34, 0x56 }, image.Pixels);
    }

    [Fact]
    public void FilesDecodeAndReadSizeFromTheHeader()
    {
        var expected = Gradient(9, 4);
        var dir = Paths.TempDir();
        var png = Path.Combine(dir, "g.png");
        File.WriteAllBytes(png, Png(9, 4, 2, 8,
            Enumerable.Range(0, 4).Select(y => expected.Pixels.AsSpan(y * 27, 27).ToArray()).ToArray()));
        var bmp = Path.Combine(dir, "g.bmp");
        File.WriteAllBytes(bmp, Bmp(expected));
        foreach (var path in new[] { png, bmp })
        {
            Assert.Equal((9, 4), ImageDecoder.ReadSize(path));
            Assert.Equal(expected.Pixels, ImageDecoder.Decode(path).Pixels);
        }
    }

    [Fact]
    public void BmpIsExact()
    {
        var expected = Gradient(5, 3); // odd width: rows are padded to 4 bytes
        var image = ImageDecoder.Decode(Bmp(expected), "gradient.bmp");
        Assert.Equal(expected.Pixels, image.Pixels);
    }
}
