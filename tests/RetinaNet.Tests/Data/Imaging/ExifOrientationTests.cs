using RetinaNet.Data.Imaging;
using Xunit;
using static RetinaNet.Tests.Data.Imaging.TestImages;

namespace RetinaNet.Tests.Data.Imaging;

/// <summary>exif_N.jpg stores the same upright picture (48x32 white, red 16x16 block top-left, blue block bottom-right)
/// turned so that EXIF orientation N turns it back; the fixture script checks this with Pillow's
/// exif_transpose.</summary>
public class ExifOrientationTests
{
    [Theory]
    [InlineData(1)] [InlineData(2)] [InlineData(3)] [InlineData(4)]
    [InlineData(5)] [InlineData(6)] [InlineData(7)] [InlineData(8)]
    public void EveryOrientationGivesTheUprightPicture(int orientation)
    {
        var path = ImageFixture($"exif_{orientation}.jpg");
        var image = ImageDecoder.Decode(path);
        Assert.Equal((48, 32), (image.Width, image.Height));
        // Centres of the six 16x16 cells of the upright picture.
        for (int cy = 0; cy < 2; cy++)
            for (int cx = 0; cx < 3; cx++)
            {
                (byte, byte, byte) expected = (cx, cy) switch { (0, 0) => (255, 0, 0), (2, 1) => (0, 0, 255),
                    _ => (255, 255, 255) };
                Near(expected, image, 16 * cx + 8, 16 * cy + 8, 8);
            }
        Assert.Equal((48, 32), ImageDecoder.ReadSize(path));
    }
}
