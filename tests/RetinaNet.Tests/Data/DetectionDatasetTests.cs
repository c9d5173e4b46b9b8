using RetinaNet.Data;
using RetinaNet.Data.Coco;
using Xunit;

namespace RetinaNet.Tests.Data;

public class DetectionDatasetTests
{
    /// <summary>An images folder holding the given (non-empty, not decoded) files.</summary>
    static string Folder(params string[] files)
    {
        var dir = Paths.TempDir();
        foreach (var f in files)
        {
            var path = Path.Combine(dir, f);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllBytes(path, [1, 2, 3]);
        }
        return dir;
    }

    // class 0 = id 2 (cat), class 1 = id 7 (dog)
    static readonly CocoCategory[] Categories = [new(7, "dog"), new(2, "cat")];

    [Fact]
    public void ConvertsBoxesClipsAndKeepsNegatives()
    {
        var coco = new CocoFile("ann.json",
            [new CocoImageInfo(10, "a.jpg", 100, 50), new CocoImageInfo(20, "b.jpg", null, null),
                new CocoImageInfo(30, "c.jpg", 64, 64)],
            [
                new CocoAnnotation(1, 10, 7, 10, 5, 20, 30, 600, false),   // inside: 10,5,30,35
                new CocoAnnotation(2, 10, 2, 90, 40, 30, 20, 600, false),  // sticks out: 90,40,120,60 -> 90,40,100,50
                new CocoAnnotation(3, 10, 2, -5, 10, 15, 10, 150, true),   // crowd, clipped: 0,10,10,20
                new CocoAnnotation(4, 10, 7, 120, 0, 10, 10, 100, false),  // right of the image: dropped
                new CocoAnnotation(5, 20, 2, 1, 2, 0, 5, 0, false),        // zero width: dropped even with size unknown
                new CocoAnnotation(6, 20, 7, 1000, 2000, 3, 4, 12, false), // size unknown: kept as is
            ],
            Categories);
        var warnings = new StringWriter();
        var ds = DetectionDataset.FromCoco(coco, Folder("a.jpg", "b.jpg", "c.jpg"), warnings);

        Assert.Equal(3, ds.Count);
        var a = ds[0];
        Assert.Equal((0, 10L, 100, 50), (a.Index, a.ImageId, a.Width!.Value, a.Height!.Value));
        Assert.Equal([10f, 5, 30, 35, 90, 40, 100, 50, 0, 10, 10, 20], a.Boxes);
        Assert.Equal([1, 0, Sample.Crowd], a.Classes);
        Assert.Equal(Path.Combine(ds.ImagesDir, "a.jpg"), a.Path);
        var b = ds[1];
        Assert.Equal((1, 20L, (int?)null), (b.Index, b.ImageId, b.Width));
        Assert.Equal([1000f, 2000, 1003, 2004], b.Boxes);
        Assert.Equal([1], b.Classes);
        Assert.Empty(ds[2].Classes); // negative image kept
        Assert.Empty(ds[2].Boxes);

        Assert.Equal(2, ds.DroppedBoxes);
        var lines = warnings.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("warning: ann.json: dropped 2 of 6 boxes with zero or negative size after clipping to their image",
            Assert.Single(lines));
    }

    [Fact]
    public void ClipToSetsSizeAndDropsOutside()
    {
        var s = new Sample(0, 1, "x.jpg", null, null, [1000, 2000, 1003, 2004, -4, -2, 8, 6, 5, 5, 9, 9], [1, 0, 2]);
        var clipped = s.ClipTo(7, 5, out int dropped);
        Assert.Equal((7, 5), (clipped.Width!.Value, clipped.Height!.Value));
        Assert.Equal([0f, 0, 7, 5], clipped.Boxes); // -4,-2,8,6 clipped to the 7x5 image; 5,5,9,9 has zero height left
        Assert.Equal([0], clipped.Classes);
        Assert.Equal(2, dropped);
        Assert.Equal(3, s.Count); // the original is unchanged
    }

    [Fact]
    public void MissingImageFileFailsNamingItAndTheAnnotations()
    {
        var dir = Folder("a.jpg");
        var coco = new CocoFile("ann.json",
            [new CocoImageInfo(1, "a.jpg", null, null), new CocoImageInfo(42, "gone.jpg", null, null)], [], Categories);
        var e = Assert.Throws<BadInputException>(() => DetectionDataset.FromCoco(coco, dir, TextWriter.Null));
        CocoFileTests.AssertOneLine(e, Path.Combine(dir, "gone.jpg"),
            "image file not found (listed in ann.json as id 42)");
    }

    [Fact]
    public void SkipBadImagesWarnsPerImageAndCounts()
    {
        var dir = Folder("a.jpg", "c.jpg");
        File.WriteAllBytes(Path.Combine(dir, "empty.jpg"), []);
        var coco = new CocoFile("ann.json",
            [new(1, "a.jpg", null, null), new(2, "gone.jpg", null, null), new(3, "empty.jpg", null, null),
                new(4, "c.jpg", null, null)],
            [new CocoAnnotation(1, 4, 2, 0, 0, 5, 5, 25, false)], Categories);
        var warnings = new StringWriter();
        var ds = DetectionDataset.FromCoco(coco, dir, warnings, skipBadImages: true);
        Assert.Equal([1L, 4], ds.Samples.Select(s => s.ImageId));
        Assert.Equal([0, 1], ds.Samples.Select(s => s.Index)); // indices are positions in the kept list
        Assert.Equal([0], ds[1].Classes);
        Assert.Equal(2, ds.SkippedImages);
        var lines = warnings.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.Contains("gone.jpg: image file not found (listed in ann.json as id 2)", lines[0]);
        Assert.Contains("empty.jpg: image file is empty (listed in ann.json as id 3)", lines[1]);
        Assert.Equal("warning: ann.json: skipped 2 of 4 images (missing or empty files)", lines[2]);
    }

    [Fact]
    public void LoadReadsTheFile()
    {
        var dir = Folder("img/p.png");
        var ann = Path.Combine(dir, "ann.json");
        File.WriteAllText(ann, """{"images": [{"id": 5, "file_name": "img/p.png", "width": 20, "height": 10}], "categories": [{"id": 1, "name": "x"}], "annotations": [{"image_id": 5, "category_id": 1, "bbox": [2, 3, 4, 5]}]}""");
        var ds = DetectionDataset.Load(ann, dir, TextWriter.Null);
        Assert.Equal([2f, 3, 6, 8], ds[0].Boxes);
        Assert.Equal("img/p.png", ds.Images[0].FileName);
        Assert.Equal(["x"], ds.Categories.Names);
    }

    [Fact]
    public void ImageFolderListsImagesRecursivelyInOrdinalOrder()
    {
        var dir = Folder("b.JPG", "a.png", "sub/c.jpeg", "Z.bmp", "notes.txt", "sub/deeper/d.Png", "x.gif");
        Assert.Equal(["Z.bmp", "a.png", "b.JPG", "sub/c.jpeg", "sub/deeper/d.Png"], ImageFolder.ListRelative(dir));
        Assert.Equal(Path.Combine(dir, "Z.bmp"), ImageFolder.List(dir)[0]);
    }

    [Fact]
    public void ImageFolderWithoutImagesFails()
    {
        var dir = Folder("notes.txt");
        var e = Assert.Throws<BadInputException>(() => ImageFolder.List(dir));
        CocoFileTests.AssertOneLine(e, dir, "no images (.jpg .jpeg .png .bmp) found");
        Assert.Throws<BadInputException>(() => DetectionDataset.FromFolder(dir));
        Assert.Throws<BadInputException>(() => ImageFolder.List(Path.Combine(dir, "missing")));
    }

    [Fact]
    public void FromFolderIsAnUnannotatedImageList()
    {
        var dir = Folder("b.jpg", "a/x.png");
        var ds = DetectionDataset.FromFolder(dir);
        Assert.Equal([0L, 1], ds.Samples.Select(s => s.ImageId));
        Assert.Equal(["a/x.png", "b.jpg"], ds.Images.Select(i => i.FileName));
        Assert.Equal(Path.Combine(dir, "a/x.png"), ds[0].Path);
        Assert.All(ds.Samples, s => Assert.Empty(s.Classes));
        Assert.Equal(0, ds.Categories.Count);
    }
}
