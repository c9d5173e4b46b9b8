using RetinaNet.Data.Imaging;
using Xunit;
using static RetinaNet.Tests.Data.Imaging.TestImages;

namespace RetinaNet.Tests.Data.Imaging;

public class EncoderTests
{
    [Fact]
    public void PngRoundTripIsExact()
    {
        var image = Gradient(23, 17);
        var path = Path.Combine(Paths.TempDir(), "sub", "out.png"); // folder created on demand
        ImageEncoder.SavePng(image, path);
        Assert.Equal(image.Pixels, ImageDecoder.Decode(path).Pixels);
        // Written atomically: nothing but the target is left in the folder.
        Assert.Equal(["out.png"], Directory.GetFiles(Path.GetDirectoryName(path)!).Select(Path.GetFileName));
    }

    [Fact]
    public void JpegRoundTripIsClose()
    {
        var image = new RetinaNet.Data.RgbImage(32, 16, new byte[32 * 16 * 3]);
        Drawing.DrawFilledRect(image, 0, 0, 16, 16, (250, 20, 20));
        Drawing.DrawFilledRect(image, 16, 0, 32, 16, (30, 60, 220));
        var path = Path.Combine(Paths.TempDir(), "out.jpg");
        ImageEncoder.SaveJpeg(image, path, quality: 95);
        Assert.Equal(new byte[] { 0xFF, 0xD8, 0xFF }, File.ReadAllBytes(path)[..3]);
        var back = ImageDecoder.Decode(path);
        Near((250, 20, 20), back, 6, 8, 6);
        Near((30, 60, 220), back, 26, 8, 6);
    }

    [Fact]
    public void SaveReplacesAnExistingFile()
    {
        var path = Path.Combine(Paths.TempDir(), "again.png");
        File.WriteAllText(path, "old contents");
        ImageEncoder.SavePng(Gradient(3, 2), path);
        Assert.Equal(Gradient(3, 2).Pixels, ImageDecoder.Decode(path).Pixels);
    }

    [Fact]
    public void QualityOutOfRange() =>
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            ImageEncoder.SaveJpeg(Gradient(2, 2), Path.Combine(Paths.TempDir(), "q.jpg"), 0));
}
