using System.Text.Json;
using RetinaNet.Checkpoints;
using RetinaNet.Cli;
using RetinaNet.Data;
using RetinaNet.Data.Imaging;
using RetinaNet.Data.Synthetic;
using RetinaNet.Model;
using Xunit;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Cli;

/// <summary>`retinanet infer` and `retinanet draw` end to end, in-process, on data the test writes.</summary>
public class InferAndDrawTests
{
    static (string Dir, string Annotations, string Images, string Model) Setup()
    {
        var dir = Paths.TempDir();
        var (annotations, imageDir) = ShapesOnDisk.Write(dir, 3, 128, seed: 11, "gt.json");
        var model = Path.Combine(dir, "m.pth");
        using (var m = new RetinaNetModel(new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 3 }))
        {
            m.Initialize(0);
            Checkpoint.Save(model, m);
        }
        return (dir, annotations, imageDir, model);
    }

    static int Run(params string[] args) => CommandLine.Run(args, TextWriter.Null, TextWriter.Null);

    [Fact]
    public void InferWritesOdtkDetectionsWithOriginalIdsAndCoordinates()
    {
        var (dir, annotations, images, model) = Setup();
        string odtk = Path.Combine(dir, "odtk.json"), results = Path.Combine(dir, "results.json");
        var common = new[] { "--images", images, "--resize", "256", "--max-size", "256", "--score-threshold", "0",
            "--device", "cpu", "--workers", "1", "--batch", "2" };
        Assert.Equal(CommandLine.Ok, Run(["infer", model, "--annotations", annotations, "--output", odtk, .. common]));
        Assert.Equal(CommandLine.Ok, Run(["infer", model, "--annotations", annotations, "--output", results,
            "--output-format", "coco-results", .. common]));

        using var doc = JsonDocument.Parse(File.ReadAllBytes(odtk));
        var root = doc.RootElement;
        var gt = JsonDocument.Parse(File.ReadAllBytes(annotations)).RootElement;
        Assert.Equal(gt.GetProperty("images").GetArrayLength(), root.GetProperty("images").GetArrayLength());
        Assert.Equal(3, root.GetProperty("categories").GetArrayLength());
        var dets = root.GetProperty("annotations").EnumerateArray().ToList();
        Assert.Equal(3 * 100, dets.Count); // score threshold 0: every image keeps its 100 best
        var ids = gt.GetProperty("images").EnumerateArray().Select(i => i.GetProperty("id").GetInt64()).ToHashSet();
        foreach (var d in dets)
        {
            Assert.Contains(d.GetProperty("image_id").GetInt64(), ids);
            Assert.InRange(d.GetProperty("category_id").GetInt64(), 1, 3); // COCO ids, not class indices 0..2
            var b = d.GetProperty("bbox").EnumerateArray().Select(x => x.GetDouble()).ToArray();
            // resized x2 for inference, mapped back: inside the 128x128 original
            Assert.True(b[0] >= 0 && b[1] >= 0 && b[2] > 0 && b[3] > 0 && b[0] + b[2] <= 128.0001
                && b[1] + b[3] <= 128.0001, string.Join(",", b));
            Assert.InRange(d.GetProperty("score").GetDouble(), 0, 1);
        }
        using var list = JsonDocument.Parse(File.ReadAllBytes(results));
        Assert.Equal(JsonValueKind.Array, list.RootElement.ValueKind);
        Assert.Equal(dets.Count, list.RootElement.GetArrayLength());
    }

    [Fact]
    public void InferWithoutAnnotationsTakesEveryImageUnderTheFolder()
    {
        var (dir, _, images, model) = Setup();
        Directory.CreateDirectory(Path.Combine(images, "sub"));
        File.Copy(Directory.GetFiles(images)[0], Path.Combine(images, "sub", "EXTRA.PNG"));
        var output = Path.Combine(dir, "d.json");
        Assert.Equal(CommandLine.Ok, Run("infer", model, "--images", images, "--output", output, "--resize", "128",
            "--max-size", "128", "--device", "cpu", "--score-threshold", "0"));
        using var doc = JsonDocument.Parse(File.ReadAllBytes(output));
        var names = doc.RootElement.GetProperty("images").EnumerateArray()
            .Select(i => i.GetProperty("file_name").GetString()).ToList();
        Assert.Equal(4, names.Count);
        Assert.Contains(Path.Combine("sub", "EXTRA.PNG"), names);
        Assert.Equal(4, doc.RootElement.GetProperty("annotations").EnumerateArray()
            .Select(d => d.GetProperty("image_id").GetInt64()).Distinct().Count());
    }

    [Fact]
    public void InferOnAnEmptyFolderSaysSo()
    {
        var (dir, _, _, model) = Setup();
        var empty = Directory.CreateDirectory(Path.Combine(dir, "empty")).FullName;
        var err = new StringWriter();
        Assert.Equal(CommandLine.Failed, CommandLine.Run(["infer", model, "--images", empty, "--device", "cpu",
            "--output", Path.Combine(dir, "x.json")], TextWriter.Null, err));
        Assert.Contains(empty, err.ToString());
        Assert.Contains("no images", err.ToString());
    }

    [Fact]
    public void DrawPutsDetectionAndGroundTruthBoxesOnThePixels()
    {
        var dir = Paths.TempDir();
        Directory.CreateDirectory(Path.Combine(dir, "img"));
        var grey = new RgbImage(64, 64, Enumerable.Repeat((byte)128, 64 * 64 * 3).ToArray());
        ImageEncoder.SavePng(grey, Path.Combine(dir, "img", "a.png"));
        File.WriteAllText(Path.Combine(dir, "gt.json"),
            """{"images": [{"id": 5, "file_name": "a.png", "width": 64, "height": 64}], "categories": [{"id": 7, "name": "thing"}], "annotations": [{"id": 1, "image_id": 5, "category_id": 7, "bbox": [45, 48, 15, 14], "area": 210, "iscrowd": 0}]}""");
        File.WriteAllText(Path.Combine(dir, "dt.json"),
            """[{"image_id": 5, "category_id": 7, "bbox": [10, 30, 30, 14], "score": 0.9}, {"image_id": 5, "category_id": 7, "bbox": [2, 50, 8, 8], "score": 0.1}]""");
        Assert.Equal(CommandLine.Ok, Run("draw", "--images", Path.Combine(dir, "img"),
            "--detections", Path.Combine(dir, "dt.json"), "--annotations", Path.Combine(dir, "gt.json"),
            "--out", Path.Combine(dir, "out"), "--min-score", "0.5"));
        var picture = ImageDecoder.Decode(Path.Combine(dir, "out", "a.png"));
        (byte, byte, byte) At(int x, int y)
        {
            int i = 3 * (y * 64 + x); return (picture.Pixels[i], picture.Pixels[i + 1], picture.Pixels[i + 2]);
        }
        Assert.Equal(DetectionPictures.ColorOf(0), At(10, 37));        // left edge of the detection
        Assert.Equal(((byte)128, (byte)128, (byte)128), At(25, 38));   // its inside untouched
        Assert.Equal(DetectionPictures.GroundTruthColor, At(45, 55));  // ground truth's left edge, in green
        Assert.Equal(((byte)128, (byte)128, (byte)128), At(2, 54));    // the 0.1 detection is under --min-score
    }
}
