using RetinaNet.Data.Imaging;
using Xunit;
using static RetinaNet.Tests.Data.Imaging.TestImages;

namespace RetinaNet.Tests.Data.Imaging;

/// <summary>JPEG fixtures from tests/fixtures/make_image_fixtures.py: flat 16x16 colour blocks, so block centres must
/// come out within a few levels of the colour that was drawn.</summary>
public class JpegDecodeTests
{
    const int Tolerance = 6;

    [Fact]
    public void ColourBlocks()
    {
        var image = ImageDecoder.Decode(ImageFixture("blocks.jpg"));
        Assert.Equal((32, 32), (image.Width, image.Height));
        Near((255, 0, 0), image, 8, 8, Tolerance);
        Near((0, 255, 0), image, 24, 8, Tolerance);
        Near((0, 0, 255), image, 8, 24, Tolerance);
        Near((128, 128, 128), image, 24, 24, Tolerance);
    }

    [Fact]
    public void GreyscaleGivesEqualChannels()
    {
        var image = ImageDecoder.Decode(ImageFixture("grey.jpg"));
        Assert.Equal((32, 16), (image.Width, image.Height));
        for (int i = 0; i < image.Pixels.Length; i += 3)
            Assert.True(image.Pixels[i] == image.Pixels[i + 1] && image.Pixels[i] == image.Pixels[i + 2],
                $"byte {i}: not grey");
        Near((40, 40, 40), image, 8, 8, Tolerance);
        Near((200, 200, 200), image, 24, 8, Tolerance);
    }

    [Fact]
    public void CmykIsConvertedToRgb()
    {
        // Left half C=0 M=Y=255 K=0 (red), right half C=M=255 (blue); Adobe-marked, as Photoshop writes them.
        var image = ImageDecoder.Decode(ImageFixture("cmyk.jpg"));
        Near((255, 0, 0), image, 6, 8, Tolerance);
        Near((0, 0, 255), image, 26, 8, Tolerance);
    }

    [Fact]
    public void ReadSizeMatchesDecode()
    {
        Assert.Equal((32, 16), ImageDecoder.ReadSize(ImageFixture("grey.jpg")));
    }
}
