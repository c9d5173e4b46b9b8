using RetinaNet.Data;
using RetinaNet.Data.Imaging;
using Xunit;
using static RetinaNet.Tests.Data.Imaging.TestImages;

namespace RetinaNet.Tests.Data.Imaging;

/// <summary>Bad files are errors that name the file and say what is wrong, never a silently wrong image.</summary>
public class DecodeErrorTests
{
    static BadInputException DecodeFails(string path)
    {
        var e = Assert.Throws<BadInputException>(() => ImageDecoder.Decode(path));
        Assert.Equal(path, e.Path);
        Assert.StartsWith(path + ": ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        return e;
    }

    [Theory]
    [InlineData(0.5)]   // half the entropy-coded data missing
    [InlineData(0.95)]  // only the last rows missing
    public void TruncatedJpeg(double keep)
    {
        var whole = File.ReadAllBytes(ImageFixture("blocks.jpg"));
        var path = Path.Combine(Paths.TempDir(), "cut.jpg");
        File.WriteAllBytes(path, whole[..(int)(whole.Length * keep)]);
        Assert.Contains("truncated or corrupt JPEG data", DecodeFails(path).Message);
        Assert.Contains("--skip-bad-images", DecodeFails(path).Message);
    }

    [Fact]
    public void JpegCutInsideTheHeader()
    {
        var path = Path.Combine(Paths.TempDir(), "head.jpg");
        File.WriteAllBytes(path, File.ReadAllBytes(ImageFixture("blocks.jpg"))[..40]);
        Assert.Contains("truncated or corrupt JPEG data", DecodeFails(path).Message);
        Assert.Throws<BadInputException>(() => ImageDecoder.ReadSize(path));
    }

    [Fact]
    public void NotAnImage()
    {
        var path = Path.Combine(Paths.TempDir(), "notes.jpg");
        File.WriteAllText(path, "hello, not an image\n");
        Assert.Contains("not a JPEG/PNG/BMP image (starts with bytes 68 65 6C 6C 6F 2C 20 6E)",
            DecodeFails(path).Message);
        Assert.Throws<BadInputException>(() => ImageDecoder.ReadSize(path));
    }

    [Fact]
    public void MissingFile()
    {
        var path = Path.Combine(Paths.TempDir(), "nowhere.jpg");
        Assert.Contains("file not found", DecodeFails(path).Message);
        Assert.Throws<BadInputException>(() => ImageDecoder.ReadSize(path));
    }

    [Fact]
    public void EmptyFile()
    {
        var path = Path.Combine(Paths.TempDir(), "empty.png");
        File.WriteAllBytes(path, []);
        Assert.Contains("empty file", DecodeFails(path).Message);
    }

    [Fact]
    public void TruncatedPng()
    {
        var gradient = Gradient(64, 64);
        var rows = Enumerable.Range(0, 64).Select(y => gradient.Pixels.AsSpan(y * 192, 192).ToArray()).ToArray();
        var whole = TestImages.Png(64, 64, 2, 8, rows);
        var path = Path.Combine(Paths.TempDir(), "cut.png");
        File.WriteAllBytes(path, whole[..(whole.Length / 2)]); // cut inside the pixel data
        Assert.Contains("truncated or corrupt PNG data", DecodeFails(path).Message);
    }

    [Fact]
    public void BytesNameTheSourceGiven()
    {
        var e = Assert.Throws<BadInputException>(() => ImageDecoder.Decode([1, 2, 3, 4], "archive.zip:img/7.jpg"));
        Assert.StartsWith("archive.zip:img/7.jpg: not a JPEG/PNG/BMP image", e.Message);
    }
}
