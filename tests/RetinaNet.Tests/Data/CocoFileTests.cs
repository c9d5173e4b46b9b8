using System.Text;
using RetinaNet.Data;
using RetinaNet.Data.Coco;
using Xunit;

namespace RetinaNet.Tests.Data;

public class CocoFileTests
{
    // Raw strings cannot start with a quote on one line, hence the escapes.
    const string Images = "\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\", \"width\": 640, \"height\": 480}, " +
        "{\"id\": 7, \"file_name\": \"b.jpg\"}]";
    const string Categories = "\"categories\": [{\"id\": 3, \"name\": \"cat\"}, {\"id\": 1, \"name\": \"person\"}]";

    static CocoFile Parse(string json) => CocoFile.Parse(Encoding.UTF8.GetBytes(json), "ann.json");

    /// <summary>The error is a BadInputException whose one-line message names the file and contains
    /// every fragment.</summary>
    static void Bad(string json, params string[] fragments)
    {
        var e = Assert.Throws<BadInputException>(() => Parse(json));
        AssertOneLine(e, "ann.json", fragments);
    }

    internal static void AssertOneLine(BadInputException e, string path, params string[] fragments)
    {
        Assert.StartsWith(path + ": ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        foreach (var f in fragments) Assert.Contains(f, e.Message);
    }

    [Fact]
    public void ReadsImagesAnnotationsCategories()
    {
        var coco = Parse($$"""{{{Images}}, {{Categories}}, "annotations": [{"id": 10, "image_id": 7, "category_id": 3, "bbox": [1.5, 2, 30, 40], "iscrowd": 1}, {"id": 11, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 20], "area": 150}]}""");
        Assert.Equal([new CocoImageInfo(1, "a.jpg", 640, 480), new CocoImageInfo(7, "b.jpg", null, null)], coco.Images);
        // area from the box: 30 * 40
        Assert.Equal(new CocoAnnotation(10, 7, 3, 1.5, 2, 30, 40, 1200, true), coco.Annotations[0]);
        // the file's area wins
        Assert.Equal(new CocoAnnotation(11, 1, 1, 0, 0, 10, 20, 150, false), coco.Annotations[1]);
        Assert.Equal(["cat", "person"], coco.Categories.Select(c => c.Name));
    }

    [Fact]
    public void BoxAndAreaAreTheFilesDoublesAndSaveKeepsThem()
    {
        // The evaluator compares these with pycocotools' float64: no rounding through float32 on the way in or out.
        var coco = Parse($$"""
            {{{Images}}, {{Categories}}, "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
             "bbox": [0.1, 340.5566743396514, 32.000000001, 1e300], "area": 1024.0000000001}]}
            """);
        var expected = new CocoAnnotation(1, 1, 1, 0.1, 340.5566743396514, 32.000000001, 1e300, 1024.0000000001, false);
        Assert.Equal(expected, coco.Annotations[0]);
        var path = Path.Combine(Paths.TempDir(), "doubles.json");
        coco.Save(path);
        Assert.Equal(expected, CocoFile.Load(path).Annotations[0]);
    }

    [Fact]
    public void MissingAnnotationsListIsAnImageList()
    {
        var coco = Parse($$"""{{{Images}}, {{Categories}}}""");
        Assert.Equal(2, coco.Images.Count);
        Assert.Empty(coco.Annotations);
    }

    [Fact]
    public void AcceptsByteOrderMark()
    {
        var bytes = Encoding.UTF8.GetPreamble().Concat(Encoding.UTF8.GetBytes($$"""{{{Images}}, {{Categories}}}"""))
            .ToArray();
        Assert.Equal(2, CocoFile.Parse(bytes, "ann.json").Images.Count);
    }

    [Fact]
    public void MalformedJson() =>
        Bad("{\"images\": [\n{\"id\": 1,,}]}", "not valid JSON", "line 2", "fix or re-export");

    [Fact]
    public void NotAnObject() => Bad("[1, 2]", "expected a COCO object");

    [Fact]
    public void MissingImages() =>
        Bad($$"""{{{Categories}}}""", "no \"images\" list", "needs \"images\" and \"categories\"");

    [Fact]
    public void MissingCategories() => Bad($$"""{{{Images}}}""", "no \"categories\" list");

    [Theory]
    [InlineData("""{"images": [{"file_name": "a.jpg"}], "categories": []}""", "images[0] has no \"id\"")]
    [InlineData("""{"images": [{"id": 1}], "categories": []}""", "images[0] has no \"file_name\"")]
    [InlineData("""{"images": [{"id": 1, "file_name": null}], "categories": []}""", "images[0] has no \"file_name\"")]
    [InlineData("""{"images": [], "categories": [{"name": "x"}]}""", "categories[0] has no \"id\"")]
    [InlineData("""{"images": [{"id": 1, "file_name": "a"}], "categories": [{"id": 1}], "annotations": [{"category_id": 1, "bbox": [0,0,1,1]}]}""", "annotations[0] has no \"image_id\"")]
    [InlineData("""{"images": [{"id": 1, "file_name": "a"}], "categories": [{"id": 1}], "annotations": [{"image_id": 1, "bbox": [0,0,1,1]}]}""", "annotations[0] has no \"category_id\"")]
    [InlineData("""{"images": [{"id": 1, "file_name": "a"}], "categories": [{"id": 1}], "annotations": [{"image_id": 1, "category_id": 1}]}""", "annotations[0] has no \"bbox\"")]
    public void EntryMissingRequiredField(string json, string message) => Bad(json, message, "needs one");

    [Theory]
    [InlineData("[0, 0, 1]")]
    [InlineData("[0, 0, 1, 2, 3, 4]")]
    [InlineData("[0, \"0\", 1, 2]")]
    [InlineData("{\"x\": 0}")]
    [InlineData("[\n  0,\n  0,\n  1\n]")] // pretty-printed: the message must still be one line
    public void BboxNotFourNumbers(string bbox) =>
        Bad($$"""{"images": [{"id": 1, "file_name": "a"}], "categories": [{"id": 1}], "annotations": [{"image_id": 1, "category_id": 1, "bbox": {{bbox}}}]}""",
            "annotations[0].bbox must be 4 numbers [x, y, width, height]");

    [Fact]
    public void WrongTypes()
    {
        Bad("""{"images": [{"id": "1", "file_name": "a"}], "categories": []}""",
            "images[0].id must be an integer, found \"1\"");
        Bad("""{"images": [{"id": 1, "file_name": 5}], "categories": []}""", "images[0].file_name must be a string");
        Bad("""{"images": [{"id": 1, "file_name": "a", "width": -3}], "categories": []}""",
            "images[0].width must be a positive number of pixels");
        Bad("""{"images": {"id": 1}, "categories": []}""", "\"images\" must be a list");
        Bad("""{"images": [{"id": 1, "file_name": ""}], "categories": []}""", "image id 1 has an empty \"file_name\"");
    }

    [Fact]
    public void DuplicatedImageIds() =>
        Bad("""{"images": [{"id": 4, "file_name": "a"}, {"id": 4, "file_name": "b"}], "categories": []}""",
            "image id 4 appears twice", "(second: b)", "must be unique");

    [Fact]
    public void DuplicatedCategoryIds() =>
        Bad("""{"images": [], "categories": [{"id": 2}, {"id": 2}]}""", "category id 2 appears twice");

    [Fact]
    public void AnnotationWithUnknownImage() =>
        Bad($$"""{{{Images}}, {{Categories}}, "annotations": [{"id": 5, "image_id": 2, "category_id": 1, "bbox": [0,0,1,1]}]}""",
            "annotation 5 refers to image_id 2, which is not in \"images\"");

    [Fact]
    public void AnnotationWithUnknownCategory() =>
        Bad($$"""{{{Images}}, {{Categories}}, "annotations": [{"id": 5, "image_id": 1, "category_id": 2, "bbox": [0,0,1,1]}]}""",
            "annotation 5 refers to category_id 2, which is not in \"categories\"");

    [Fact]
    public void LoadReportsMissingDirectoryAndUnreadableFiles()
    {
        var dir = Paths.TempDir();
        var missing = Path.Combine(dir, "nope.json");
        AssertOneLine(Assert.Throws<BadInputException>(() => CocoFile.Load(missing)), missing,
            "annotation file not found");
        AssertOneLine(Assert.Throws<BadInputException>(() => CocoFile.Load(dir)), dir, "is a directory");
        var bad = Path.Combine(dir, "bad.json");
        File.WriteAllText(bad, "{\"images\": [");
        AssertOneLine(Assert.Throws<BadInputException>(() => CocoFile.Load(bad)), bad, "not valid JSON");
    }

    [Fact]
    public void SaveThenLoadRoundTrips()
    {
        var coco = new CocoFile("x.json",
            [new CocoImageInfo(3, "sub/a.jpg", 640, 480), new CocoImageInfo(9, "b.png", null, null)],
            [new CocoAnnotation(1, 3, 5, 0.25, 1.5, 10.125, 20, 202.5, false),
                new CocoAnnotation(2, 9, 90, 7, 8, 9, 10, 33, true)],
            [new CocoCategory(90, "toothbrush", "indoor"), new CocoCategory(5, "airplane")]);
        var path = Path.Combine(Paths.TempDir(), "out.json");
        coco.Save(path);
        var back = CocoFile.Load(path);
        Assert.Equal(coco.Images, back.Images);
        Assert.Equal(coco.Annotations, back.Annotations);
        Assert.Equal(coco.Categories, back.Categories);
        Assert.False(File.Exists(path + ".tmp"));
    }

    [Fact]
    public void CategoryMapBothWaysWithGaps()
    {
        // Given out of order, as files often are: indices follow sorted ids.
        var map = new CategoryMap([new(90, "e"), new(3, "c"), new(1, "a"), new(5, "d"), new(2, "b")]);
        Assert.Equal(5, map.Count);
        long[] ids = [1, 2, 3, 5, 90];
        for (int i = 0; i < 5; i++)
        {
            Assert.Equal(i, map.ClassIndexOf(ids[i]));
            Assert.Equal(ids[i], map.CategoryIdOf(i));
        }
        Assert.Equal(["a", "b", "c", "d", "e"], map.Names);
        Assert.Throws<KeyNotFoundException>(() => map.ClassIndexOf(4));
    }
}
