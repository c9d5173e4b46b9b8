using RetinaNet.Data.Coco;
using RetinaNet.Data;
using RetinaNet.Evaluation;
using Xunit;
using static RetinaNet.Tests.Evaluation.HandGt;

namespace RetinaNet.Tests.Evaluation;

public class DetectionsFileTests
{
    static readonly string Dir = Paths.TempDir();
    static string Write(string name, string json)
    {
        var p = Path.Combine(Dir, name); File.WriteAllText(p, json); return p;
    }

    [Fact]
    public void ReadsOdtkAndPlainCocoResults()
    {
        var odtk = Write("odtk.json", """{"annotations": [{"image_id": 7, "score": 0.25, "category_id": 3, "bbox": [1.5, 2, 30.25, 40]}], "images": [], "categories": [[]]}""");
        var plain = Write("plain.json",
            """[{"image_id": 7, "category_id": 3, "bbox": [1.5, 2, 30.25, 40], "score": 0.25}]""");
        var expected = new CocoDetection(7, 3, 1.5f, 2, 30.25f, 40, 0.25f);
        Assert.Equal([expected], DetectionsFile.Read(odtk));
        Assert.Equal([expected], DetectionsFile.Read(plain));
        Assert.Empty(DetectionsFile.Read(Write("empty.json", "[]")));
        Assert.Empty(DetectionsFile.Read(Write("empty_odtk.json", """{"annotations": []}""")));
    }

    [Fact]
    public void BothFormatsRoundTripEveryDoubleExactly()
    {
        // Values with no short decimal form: the written text must read back to the same bits, for doubles and for
        // a model's float32 outputs widened to double.
        var detections = new[]
        {
            new CocoDetection(1, 1, 0.1f, 1f / 3, 123.456789f, MathF.PI, 0.87654321f),
            new CocoDetection(2, 3, 1e-7f, 4096.5f, 1e20f, float.Epsilon, 1f),
            new CocoDetection(1, 3, 0.1, 1.0 / 3, 123.456789, Math.PI, 0.87654321),
            new CocoDetection(2, 1, 1e-300, Math.BitIncrement(32.0), 1e300, double.Epsilon, Math.BitDecrement(1.0)),
        };
        var gt = Of([], images: [1, 2], categories: [1, 3]);
        string odtk = Path.Combine(Dir, "rt_odtk.json"), plain = Path.Combine(Dir, "rt_plain.json");
        DetectionsFile.WriteOdtk(odtk, detections, gt);
        DetectionsFile.WriteCocoResults(plain, detections);
        Assert.Equal(detections, DetectionsFile.Read(odtk));
        Assert.Equal(detections, DetectionsFile.Read(plain));
        Assert.False(File.Exists(odtk + ".tmp"));
    }

    [Fact]
    public void ReadsTheFilesDoublesUnrounded()
    {
        // pycocotools reads float64: scores apart only beyond float32, a box past float32's range, 32 + 1e-9.
        var path = Write("f64.json", """ [{"image_id": 1, "category_id": 1, "bbox": [1e300, 0.1, 32.000000001, 2], "score": 0.30000000000000004}, {"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.3}] """);
        var read = DetectionsFile.Read(path);
        Assert.Equal(new CocoDetection(1, 1, 1e300, 0.1, 32.000000001, 2, 0.30000000000000004), read[0]);
        Assert.Equal(0.3, read[1].Score);
        Assert.NotEqual(read[0].Score, read[1].Score);
    }

    [Fact]
    public void MalformedJsonNamesTheFile()
    {
        var path = Write("broken.json", """[{"image_id": 1, """);
        var e = Assert.Throws<BadInputException>(() => DetectionsFile.Read(path));
        Assert.StartsWith(path + ": not valid JSON", e.Message);
    }

    [Theory]
    [InlineData("score")]
    [InlineData("bbox")]
    [InlineData("image_id")]
    [InlineData("category_id")]
    public void MissingFieldNamesTheFileEntryAndField(string field)
    {
        var fields = new Dictionary<string, string> { ["image_id"] = "1", ["category_id"] = "1",
            ["bbox"] = "[0, 0, 1, 1]", ["score"] = "0.5" };
        fields.Remove(field);
        string entry = "{" + string.Join(", ", fields.Select(f => $"\"{f.Key}\": {f.Value}")) + "}";
        var path = Write($"missing_{field}.json", $$"""{"annotations": [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}, {{entry}}]}""");
        var e = Assert.Throws<BadInputException>(() => DetectionsFile.Read(path));
        Assert.Equal(path, e.Path);
        Assert.Contains($"annotations[1] has no \"{field}\"", e.Message);
    }

    [Fact]
    public void WrongTypesAreNamed()
    {
        var path = Write("badbox.json", """[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1], "score": 0.5}]""");
        Assert.Contains("detections[0].bbox must be 4 numbers",
            Assert.Throws<BadInputException>(() => DetectionsFile.Read(path)).Message);
        path = Write("badscore.json", """[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": "high"}]""");
        Assert.Contains("detections[0].score must be a finite number",
            Assert.Throws<BadInputException>(() => DetectionsFile.Read(path)).Message);
        path = Write("hugescore.json", """[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1e400}]""");
        var huge = Assert.Throws<BadInputException>(() => DetectionsFile.Read(path));
        Assert.Contains("detections[0].score must be a finite number", huge.Message);
        path = Write("badroot.json", """{"detections": []}""");
        Assert.StartsWith(path + ": expected a COCO results list",
            Assert.Throws<BadInputException>(() => DetectionsFile.Read(path)).Message);
    }

    [Fact]
    public void UnknownImageOrCategoryIsOneClearError()
    {
        var gt = Of([Box(1, 1, 1, 0, 0, 10, 10)], images: [1], categories: [1]);
        var e = Assert.Throws<BadInputException>(() => DetectionsFile.Validate(
            [Det(1, 1, 0, 0, 1, 1, 1), Det(5, 1, 0, 0, 1, 1, 1), Det(6, 1, 0, 0, 1, 1, 1)], gt, "dt.json"));
        Assert.Equal("dt.json", e.Path);
        Assert.Contains(
            "2 detection(s) refer to images not in the ground truth hand.json (first: detection 1, image_id 5)",
            e.Message);
        e = Assert.Throws<BadInputException>(() => DetectionsFile.Validate([Det(1, 9, 0, 0, 1, 1, 1)], gt, "dt.json"));
        Assert.Contains(
            "1 detection(s) refer to categories not in the ground truth hand.json (first: detection 0, category_id 9)",
            e.Message);
        DetectionsFile.Validate([], gt, "dt.json"); // an empty list is valid
    }

    [Fact]
    public void RotatedBoxesAndPolygonsTravelThroughFiles()
    {
        // ODTK's rotated form: bbox [x, y, w, h, theta] and the 4 corners in "segmentation"
        var path = Write("rotated.json", """[{"image_id": 1, "category_id": 2, "bbox": [10, 20, 30, 40, 0.25], "score": 0.5, "segmentation": [[1.5, 2, 3, 4, 5, 6, 7, 8.25]]}, {"image_id": 1, "category_id": 2, "bbox": [1, 2, 3, 4], "score": 0.1}]""");
        var read = DetectionsFile.Read(path);
        Assert.Equal(0.25, read[0].Theta);
        Assert.Equal([1.5, 2, 3, 4, 5, 6, 7, 8.25], Assert.Single(read[0].Segmentation!.Polygons!));
        Assert.Null(read[1].Theta);
        Assert.Null(read[1].Segmentation);

        var copy = Path.Combine(Dir, "rotated-copy.json");
        DetectionsFile.WriteCocoResults(copy, read);
        var again = DetectionsFile.Read(copy);
        Assert.Equal(read[0].Theta, again[0].Theta);
        Assert.Equal(read[0].Segmentation!.Polygons![0], again[0].Segmentation!.Polygons![0]);
        Assert.Null(again[1].Theta);

        var gtPath = Write("rotated-gt.json", """{"images": [{"id": 1, "file_name": "a.png", "width": 9, "height": 9}], "categories": [{"id": 2}], "annotations": [{"id": 3, "image_id": 1, "category_id": 2, "bbox": [1, 2, 3, 4, -0.5], "segmentation": {"size": [9, 9], "counts": "0Q1"}, "area": 12}]}""");
        var gt = CocoFile.Load(gtPath);
        var savedPath = Path.Combine(Dir, "rotated-gt-copy.json");
        gt.Save(savedPath);
        var saved = CocoFile.Load(savedPath).Annotations[0];
        Assert.Equal(-0.5, saved.Theta);
        Assert.Equal("0Q1", saved.Segmentation!.CompressedCounts);
        Assert.Equal((9, 9), (saved.Segmentation.Height, saved.Segmentation.Width));
        var bad = Write("bad-segm.json",
            """[{"image_id": 1, "category_id": 2, "bbox": [1, 2, 3, 4], "score": 0.1, "segmentation": [[1, "x"]]}]""");
        Assert.Contains("detections[0].segmentation has a polygon with a value that is not a finite number",
            Assert.Throws<BadInputException>(() => DetectionsFile.Read(bad)).Message);
    }
}
