using RetinaNet.Data;
using RetinaNet.Data.Coco;
using RetinaNet.Data.Converters;
using Xunit;

namespace RetinaNet.Tests.Data;

public class YoloConverterTests
{
    /// <summary>Ultralytics layout: images/train + labels/train, data.yaml with a block map of names.</summary>
    static string Ultralytics()
    {
        var root = Paths.TempDir();
        TestImages.WriteText(root, "data.yaml",
            "path: .\ntrain: images/train\nnames:\n  0: cat   # first\n  1: dog\nnc: 2\n");
        TestImages.Write(root, "images/train/a.jpg", TestImages.Jpeg(640, 480));
        TestImages.WriteText(root, "labels/train/a.txt", "1 0.5 0.5 0.25 0.5\n\n0 0.1 0.2 0.1 0.2\n");
        TestImages.Write(root, "images/train/b.png", TestImages.Png(100, 50)); // no label file: a negative
        TestImages.WriteText(root, "train.txt", "images/train/a.jpg\n"); // an image list, not a label file
        return root;
    }

    static void Box(CocoAnnotation a, long imageId, long category, double x, double y, double w, double h)
    {
        Assert.Equal((imageId, category), (a.ImageId, a.CategoryId));
        foreach (var (expected, actual) in new[] { (x, a.X), (y, a.Y), (w, a.W), (h, a.H) })
            Assertions.Close(expected, actual, 1e-9);
    }

    [Fact]
    public void ConvertsTheUltralyticsLayout()
    {
        var root = Ultralytics();
        var result = YoloConverter.Convert(root, root, "out.json");
        var coco = result.Coco;
        Assert.Equal([new CocoCategory(1, "cat"), new CocoCategory(2, "dog")], coco.Categories);
        Assert.Equal([new CocoImageInfo(1, "images/train/a.jpg", 640, 480),
            new CocoImageInfo(2, "images/train/b.png", 100, 50)], coco.Images);
        Assert.Equal(2, coco.Annotations.Count);
        // dog: w = 0.25 * 640 = 160, h = 0.5 * 480 = 240, x = 320 - 80 = 240, y = 240 - 120 = 120.
        Box(coco.Annotations[0], 1, 2, 240, 120, 160, 240);
        // cat: w = 64, h = 96, x = 64 - 32 = 32, y = 96 - 48 = 48.
        Box(coco.Annotations[1], 1, 1, 32, 48, 64, 96);
        Assert.Equal(1, result.ImagesWithoutObjects);
    }

    [Fact]
    public void SameFolderLayoutWithClassesTxtAndExifRotation()
    {
        var dir = Paths.TempDir();
        TestImages.WriteText(dir, "classes.txt", "car\nbus\n\n");
        TestImages.Write(dir, "x.jpg", TestImages.Jpeg(200, 100, orientation: 6)); // displayed 100 wide, 200 high
        TestImages.WriteText(dir, "x.txt", "1 0.5 0.25 1 0.5");
        var coco = YoloConverter.Convert(dir, dir, "out.json").Coco;
        Assert.Equal(new CocoImageInfo(1, "x.jpg", 100, 200), coco.Images.Single());
        Assert.Equal(["car", "bus"], coco.Categories.Select(c => c.Name));
        Box(coco.Annotations.Single(), 1, 2, 0, 0, 100, 100); // w = 100, h = 100, x = 50 - 50, y = 50 - 50
    }

    [Theory]
    [InlineData("0 0.5 0.5 0.2", "line 2: expected 5 values (class cx cy w h), found 4")]
    [InlineData("2 0.5 0.5 0.2 0.2", "line 2: class 2 is out of range; the class names list 2 classes (0..1)")]
    [InlineData("x 0.5 0.5 0.2 0.2", "line 2: class must be a whole number")]
    [InlineData("0 0.5 1.5 0.2 0.2", "line 2: '1.5' is not a number in [0, 1]")]
    public void BadLabelLinesNameFileAndLine(string line, string message)
    {
        var root = Ultralytics();
        var label = TestImages.WriteText(root, "labels/train/a.txt", "0 0.5 0.5 0.1 0.1\n" + line + "\n");
        var e = Assert.Throws<BadInputException>(() => YoloConverter.Convert(root, root, "out.json"));
        CocoFileTests.AssertOneLine(e, label, message);
    }

    [Fact]
    public void LabelWithoutImage()
    {
        var root = Ultralytics();
        var label = TestImages.WriteText(root, "labels/train/c.txt", "0 0.5 0.5 0.1 0.1\n");
        CocoFileTests.AssertOneLine(Assert.Throws<BadInputException>(() => YoloConverter.Convert(root, root, "o.json")),
            label, "label file without an image");
    }

    [Fact]
    public void NoClassNames()
    {
        var dir = Paths.TempDir();
        TestImages.Write(dir, "x.png", TestImages.Png(4, 4));
        CocoFileTests.AssertOneLine(Assert.Throws<BadInputException>(() => YoloConverter.Convert(dir, dir, "o.json")),
            dir, "no class names");
    }

    [Theory]
    [InlineData("names: ['a', \"b c\", d]  # flow list", new[] { "a", "b c", "d" })]
    [InlineData("nc: 3\nnames:\n  - a\n  - 'it''s'\n  - c\ntrain: x\n", new[] { "a", "it's", "c" })]
    [InlineData("names:\n- a\n- b\n", new[] { "a", "b" })]
    [InlineData("names: {0: a, 1: 'b'}", new[] { "a", "b" })]
    [InlineData("names:\n  0: person\n  1: bicycle\nval: y\n", new[] { "person", "bicycle" })]
    // Forms YAML allows that a line-by-line reader gets wrong: quoted colons and '#', an apostrophe in a plain
    // scalar, escapes, a flow list over several lines, comment lines inside the block, a document marker.
    [InlineData("names: {0: \"a: b\", 1: 'c # d'}", new[] { "a: b", "c # d" })]
    [InlineData("names:\n  0: 'x: y'  # colon\n  1: \"z\"\n", new[] { "x: y", "z" })]
    [InlineData("names: [it's, b]", new[] { "it's", "b" })]
    [InlineData("names: [\"caf\\u00e9\", \"a\\\"b\"]", new[] { "caf\u00e9", "a\"b" })]
    [InlineData("names: [a,\n  b,  # second\n  c]\nnc: 3\n", new[] { "a", "b", "c" })]
    [InlineData("# classes\nnames:  # below\n  # none yet\n  - a  # first\n\n  - b\n", new[] { "a", "b" })]
    [InlineData("---\n\"names\": [a, b]\n...\n", new[] { "a", "b" })]
    public void YamlNameForms(string yaml, string[] expected)
    {
        var path = TestImages.WriteText(Paths.TempDir(), "data.yaml", yaml);
        Assert.Equal(expected, YoloClassNames.Load(path));
    }

    [Theory]
    [InlineData("names:\n  0: a\n  2: b\n", "line 3: expected class index 1, found '2'")]
    [InlineData("nc: 2\n", "no top-level 'names:' entry")]
    [InlineData("names: [a, a]", "class name 'a' appears twice")]
    [InlineData("data:\n  names: [a]\n", "no top-level 'names:' entry")]
    [InlineData("names: [a, b\n", "not valid YAML")]
    [InlineData("names: a\n", "line 1: names must be a list")]
    [InlineData("names:\n  - a\n  - [b, c]\n", "line 3: class 1 must be a plain name")]
    [InlineData("names:\n  - a\n  - ''\n", "line 3: class 1 has an empty name")]
    [InlineData("names: []\n", "lists no class names")]
    public void BadYaml(string yaml, string message)
    {
        var path = TestImages.WriteText(Paths.TempDir(), "data.yaml", yaml);
        CocoFileTests.AssertOneLine(Assert.Throws<BadInputException>(() => YoloClassNames.Load(path)), path, message);
    }

    [Fact]
    public void ClassesTxtWithAHoleIsAnError()
    {
        var path = TestImages.WriteText(Paths.TempDir(), "classes.txt", "a\n\nb\n");
        CocoFileTests.AssertOneLine(Assert.Throws<BadInputException>(() => YoloClassNames.Load(path)), path,
            "line 2 is empty");
    }
}
