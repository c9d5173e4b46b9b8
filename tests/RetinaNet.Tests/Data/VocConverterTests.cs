using RetinaNet.Data;
using RetinaNet.Data.Coco;
using RetinaNet.Data.Converters;
using Xunit;

namespace RetinaNet.Tests.Data;

public class VocConverterTests
{
    static string Xml(string fileName, int width, int height,
        params (string Name, int X1, int Y1, int X2, int Y2, int Difficult)[] objects) =>
        $"<annotation><folder>VOC2007</folder><filename>{fileName}</filename>"
        + $"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>"
        + string.Concat(objects.Select(o => $"<object><name>{o.Name}</name><pose>Left</pose><truncated>0</truncated>"
            + $"<difficult>{o.Difficult}</difficult>"
            + $"<bndbox><xmin>{o.X1}</xmin><ymin>{o.Y1}</ymin><xmax>{o.X2}</xmax><ymax>{o.Y2}</ymax></bndbox>"
            + "</object>"))
        + "</annotation>";

    /// <summary>A VOC root: 000001 (a 500x375 JPEG, two objects) and 000002 (a PNG whose XML gives
    /// size 0, no objects).</summary>
    static string VocRoot()
    {
        var root = Paths.TempDir();
        TestImages.WriteText(root, "Annotations/000001.xml",
            Xml("000001.jpg", 500, 375, ("person", 8, 12, 352, 498, 1), ("dog", 48, 240, 195, 371, 0)));
        TestImages.Write(root, "JPEGImages/000001.jpg", TestImages.Jpeg(500, 375));
        TestImages.WriteText(root, "Annotations/000002.xml", Xml("000002.png", 0, 0));
        TestImages.Write(root, "JPEGImages/000002.png", TestImages.Png(64, 48));
        return root;
    }

    [Fact]
    public void ConvertsAVocRoot()
    {
        var root = VocRoot();
        var result = VocConverter.Convert(root, root, "out.json");
        var coco = result.Coco;
        // Categories sorted by name: dog = 1, person = 2.
        Assert.Equal([new CocoCategory(1, "dog"), new CocoCategory(2, "person")], coco.Categories);
        Assert.Equal([new CocoImageInfo(1, "JPEGImages/000001.jpg", 500, 375),
            new CocoImageInfo(2, "JPEGImages/000002.png", 64, 48)], coco.Images);
        // 1-based inclusive corners: x = xmin - 1, w = xmax - xmin + 1.
        // person: 8..352 -> x 7, w 345; 12..498 -> y 11, h 487.
        Assert.Equal(new CocoAnnotation(1, 1, 2, 7, 11, 345, 487, 345 * 487, false), coco.Annotations[0]);
        // dog: 48..195 -> x 47, w 148; 240..371 -> y 239, h 132.
        Assert.Equal(new CocoAnnotation(2, 1, 1, 47, 239, 148, 132, 148 * 132, false), coco.Annotations[1]);
        Assert.Equal((1, 1), (result.ImagesWithoutObjects, result.DifficultObjects));
    }

    [Fact]
    public void FlatFolderFindsTheImageBesideTheXmlEvenWhenFilenameIsStale()
    {
        var dir = Paths.TempDir();
        TestImages.WriteText(dir, "cat.xml", Xml("IMG_0001.JPG", 10, 10, ("cat", 1, 1, 10, 10, 0)));
        TestImages.Write(dir, "cat.bmp", TestImages.Bmp(10, 10));
        var coco = VocConverter.Convert(dir, dir, "out.json").Coco;
        Assert.Equal("cat.bmp", coco.Images.Single().FileName);
        // the whole 10x10 image
        Assert.Equal(new CocoAnnotation(1, 1, 1, 0, 0, 10, 10, 100, false), coco.Annotations.Single());
    }

    [Fact]
    public void MalformedXmlNamesTheFileAndLine()
    {
        var dir = Paths.TempDir();
        var xml = TestImages.WriteText(dir, "a.xml", "<annotation>\n<filename>a.jpg</filename>\n<object></annotation>");
        var e = Assert.Throws<BadInputException>(() => VocConverter.Convert(dir, dir, "out.json"));
        CocoFileTests.AssertOneLine(e, xml, "malformed XML at line 3");
    }

    [Fact]
    public void MissingImage()
    {
        var dir = Paths.TempDir();
        var xml = TestImages.WriteText(dir, "a.xml", Xml("gone.jpg", 10, 10));
        var e = Assert.Throws<BadInputException>(() => VocConverter.Convert(dir, dir, "out.json"));
        CocoFileTests.AssertOneLine(e, xml, "image 'gone.jpg' not found");
    }

    [Fact]
    public void BadBoxes()
    {
        var dir = Paths.TempDir();
        TestImages.Write(dir, "a.jpg", TestImages.Jpeg(10, 10));
        var xml = TestImages.WriteText(dir, "a.xml", Xml("a.jpg", 10, 10, ("cat", 5, 1, 4, 10, 0)));
        CocoFileTests.AssertOneLine(Assert.Throws<BadInputException>(() => VocConverter.Convert(dir, dir, "o.json")),
            xml, "object 1", "xmax < xmin");
        File.WriteAllText(xml, Xml("a.jpg", 10, 10).Replace("</annotation>",
            "<object><name>cat</name><bndbox><xmin>one</xmin></bndbox></object></annotation>"));
        CocoFileTests.AssertOneLine(Assert.Throws<BadInputException>(() => VocConverter.Convert(dir, dir, "o.json")),
            xml, "<xmin> must be a number, found 'one'");
        File.WriteAllText(xml, "<root/>");
        CocoFileTests.AssertOneLine(Assert.Throws<BadInputException>(() => VocConverter.Convert(dir, dir, "o.json")),
            xml, "not a VOC annotation");
    }

    [Fact]
    public void ImageOutsideTheImagesRoot()
    {
        var root = VocRoot();
        var e = Assert.Throws<BadInputException>(() =>
            VocConverter.Convert(root, Path.Combine(root, "Annotations"), "o.json"));
        Assert.Contains("is outside the images root", e.Message);
    }
}
