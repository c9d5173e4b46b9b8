using RetinaNet.Cli;
using RetinaNet.Data.Coco;
using Xunit;

namespace RetinaNet.Tests.Data;

public class ConvertCommandTests
{
    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter(); var e = new StringWriter();
        int code = CommandLine.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public void ConvertsYoloAndWritesCoco()
    {
        var dir = Paths.TempDir();
        TestImages.WriteText(dir, "classes.txt", "car\n");
        TestImages.Write(dir, "x.png", TestImages.Png(10, 20));
        TestImages.WriteText(dir, "x.txt", "0 0.5 0.5 0.2 0.1\n");
        TestImages.Write(dir, "y.png", TestImages.Png(10, 20));
        var output = Path.Combine(Paths.TempDir(), "ann.json");
        var (code, stdout, stderr) = Run("convert", "--from", "yolo", dir, "--output", output);
        Assert.True(code == 0, stderr);
        Assert.StartsWith($"wrote {output}: 2 images (1 without objects), 1 objects, 1 categories", stdout);
        var coco = CocoFile.Load(output);
        var a = coco.Annotations.Single();
        Assertions.Close(4, a.X, 1e-9); Assertions.Close(9, a.Y, 1e-9);
        Assertions.Close(2, a.W, 1e-9); Assertions.Close(2, a.H, 1e-9);
    }

    [Fact]
    public void ConvertsVoc()
    {
        var dir = Paths.TempDir();
        TestImages.Write(dir, "a.jpg", TestImages.Jpeg(10, 10));
        TestImages.WriteText(dir, "a.xml", "<annotation><filename>a.jpg</filename><object><name>cat</name>" +
            "<difficult>1</difficult><bndbox><xmin>2</xmin><ymin>3</ymin><xmax>4</xmax><ymax>5</ymax></bndbox>" +
            "</object></annotation>");
        var output = Path.Combine(dir, "ann.json");
        var (code, stdout, stderr) = Run("convert", "--from", "voc", dir, "--output", output);
        Assert.True(code == 0, stderr);
        Assert.Contains("1 objects (1 marked difficult, kept as normal boxes)", stdout);
        Assert.Equal(new CocoAnnotation(1, 1, 1, 1, 2, 3, 3, 9, false), CocoFile.Load(output).Annotations.Single());
    }

    [Fact]
    public void BadCommandLinesAreUsageErrors()
    {
        var dir = Paths.TempDir();
        Assert.Equal(2, Run("convert", "--from", "coco", dir, "--output", Path.Combine(dir, "a.json")).Code);
        Assert.Equal(2, Run("convert", "--from", "voc", Path.Combine(dir, "missing"),
            "--output", Path.Combine(dir, "a.json")).Code);
        Assert.Equal(2, Run("convert", "--from", "voc", dir, "--output", Path.Combine(dir, "a.txt")).Code);
        Assert.Equal(2, Run("convert", "--from", "voc", dir).Code);
    }

    [Fact]
    public void BadInputIsOneLineExitOne()
    {
        var dir = Paths.TempDir();
        var xml = TestImages.WriteText(dir, "a.xml", "<annotation>");
        var output = Path.Combine(dir, "ann.json");
        var (code, _, stderr) = Run("convert", "--from", "voc", dir, "--output", output);
        Assert.Equal(1, code);
        Assert.StartsWith($"retinanet convert: error: {xml}: malformed XML", stderr);
        Assert.Equal(1, stderr.Count(c => c == '\n'));
        Assert.False(File.Exists(output));
    }
}
