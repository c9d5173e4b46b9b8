using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using RetinaNet.Checkpoints;
using RetinaNet.Cli;
using RetinaNet.Model;
using Xunit;

namespace RetinaNet.Tests.Inference;

/// <summary>Categories travel with the model: train stores the annotation file's categories (id, name) in class order,
/// export writes them into the ONNX metadata (read back here by ONNX Runtime, a second reader), and the Detector names
/// its detections with them.</summary>
public class CategoriesTests
{
    [Fact]
    public void TrainStoresTheCategoriesAndExportAndDetectorCarryThem()
    {
        var dir = Paths.TempDir();
        var (annotations, images) = ShapesOnDisk.Write(dir, 4, 128, seed: 3, "train.json");
        // the expected classes, read from the file with a plain JSON reader: categories sorted by id (ODTK's order)
        using var file = JsonDocument.Parse(File.ReadAllBytes(annotations));
        var expected = file.RootElement.GetProperty("categories").EnumerateArray()
            .Select(c => new Category(c.GetProperty("id").GetInt64(), c.GetProperty("name").GetString()!))
            .OrderBy(c => c.Id).ToList();
        Assert.True(expected.Count >= 2);
        string model = Path.Combine(dir, "m.pth"), onnx = Path.Combine(dir, "m.onnx");
        Assert.Equal(0, CommandLine.Run(["train", model, "--annotations", annotations, "--images", images, "--backbone",
            "ResNet18FPN", "--backbone-weights", "none", "--iters", "1", "--batch", "2", "--resize", "128",
            "--max-size", "128", "--device", "cpu"], TextWriter.Null, TextWriter.Null));

        using (var loaded = Checkpoint.Load(model).Model) Assert.Equal(expected, loaded.Config.Categories);

        Assert.Equal(0, CommandLine.Run(
            ["export", model, onnx, "--size", "128", "128", "--full-precision", "--score-threshold", "0"],
            TextWriter.Null, TextWriter.Null));
        using (var session = new InferenceSession(onnx))
        {
            var json = session.ModelMetadata.CustomMetadataMap["retinanet.categories"];
            using var doc = JsonDocument.Parse(json);
            var written = doc.RootElement.EnumerateArray()
                .Select(c => new Category(c.GetProperty("id").GetInt64(), c.GetProperty("name").GetString()!)).ToList();
            Assert.Equal(expected, written);
        }

        foreach (var path in new[] { model, onnx })
        {
            // an export's threshold is fixed in its graph (0 above); the checkpoint's is an option
            var options = new DetectorOptions { Device = "cpu", ScoreThreshold = path == onnx ? null : 0 };
            using var detector = Detector.Load(path, options);
            Assert.Equal(expected, detector.Categories);
            var found = detector.Detect(Directory.GetFiles(images)[0]);
            Assert.NotEmpty(found);
            foreach (var d in found)
                Assert.Equal((expected[d.Class].Id, expected[d.Class].Name), (d.CategoryId, d.Name));
        }
    }

    [Theory]
    [InlineData(".pth")]
    [InlineData(".safetensors")]
    public void ACheckpointKeepsItsCategories(string extension)
    {
        var path = Path.Combine(Paths.TempDir(), "m" + extension);
        Category[] categories = [new(7, "cat"), new(42, "dog: \"big\"")];
        using (var model = new RetinaNetModel(new DetectorConfig { Backbones = ["MobileNetV2FPN"], Classes = 3 }))
        {
            model.UseCategories(categories);
            Checkpoint.Save(path, model);
        }
        using var loaded = Checkpoint.Load(path).Model;
        Assert.Equal(categories, loaded.Config.Categories);
        using var detector = Detector.Load(path, new DetectorOptions { Device = "cpu" });
        // a class beyond them: its index
        Assert.Equal([.. categories, new Category(2, "class 2")], detector.Categories);
    }
}
