using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using RetinaNet.Boxes;
using RetinaNet.Checkpoints;
using RetinaNet.Cli;
using RetinaNet.Data.Imaging;
using RetinaNet.Data.Synthetic;
using Xunit;

namespace RetinaNet.Tests.Training;

/// <summary>ODTK's <c>--rotated-bbox</c> end to end on the CPU, as a user runs it: train on rotated annotations,
/// the checkpoint saying it is rotated (ODTK's keys), infer refusing a model/flag mismatch with one line and writing
/// bbox [x, y, w, h, theta] with the same box's corners as the segmentation, a rotated resume refused for an
/// axis-aligned model, and export: raw heads with 6 values per anchor, the in-graph NMS reported as not yet
/// there.</summary>
[Collection("global torch RNG")]
public class RotatedTrainingTests
{
    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        int code = CommandLine.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    static (string Annotations, string Images) RotatedShapes(string dir)
    {
        var (coco, images) = ShapesDataset.GenerateRotated(4, 128, 11, Path.Combine(dir, "train.json"));
        var imageDir = Path.Combine(dir, "images");
        Directory.CreateDirectory(imageDir);
        foreach (var (name, image) in images) ImageEncoder.SavePng(image, Path.Combine(imageDir, name));
        coco.Save(coco.Path);
        return (coco.Path, imageDir);
    }

    [Fact]
    public void TrainInferAndExportWithRotatedBoxes()
    {
        var dir = Paths.TempDir();
        var (annotations, images) = RotatedShapes(dir);
        string model = Path.Combine(dir, "r.pth"), output = Path.Combine(dir, "d.json");
        string[] train = ["train", model, "--annotations", annotations, "--images", images, "--backbone", "ResNet18FPN",
            "--backbone-weights", "none", "--iters", "2", "--batch", "2", "--resize", "128", "--max-size", "128",
            "--jitter", "128", "128", "--device", "cpu", "--score-threshold", "0", "--rotated-bbox"];
        var trained = Run(train);
        Assert.True(trained.Code == 0, trained.Err);

        var root = Assert.IsType<OrderedDictionary<string, object?>>(TorchCheckpointFile.Load(model));
        Assert.Equal(true, root["rotated_bbox"]);
        Assert.Equal(AnchorConfig.DefaultAngles, ((IEnumerable<object?>)root["angles"]!).Select(v => (double)v!));
        using (var loaded = Checkpoint.Load(model).Model)
        {
            Assert.True(loaded.Config.Rotated);
            var boxOutput = RetinaNet.Model.StateDict.Of(loaded)[loaded.OutputConvolutions[1] + ".weight"];
            Assert.Equal(6 * 27, boxOutput.shape[0]); // x, y, w, h, sin, cos for 3 angles x 3 ratios x 3 scales
        }

        var mismatch = Run("infer", model, "--images", images, "--output", output, "--device", "cpu");
        Assert.Equal(CommandLine.Failed, mismatch.Code);
        Assert.Contains("pass --rotated-bbox", mismatch.Err);
        Assert.Single(mismatch.Err.TrimEnd().Split('\n'));

        var inferred = Run("infer", model, "--images", images, "--annotations", annotations, "--output", output,
            "--device", "cpu", "--rotated-bbox");
        Assert.True(inferred.Code == 0, inferred.Err);
        using (var doc = JsonDocument.Parse(File.ReadAllText(output)))
        {
            var detections = doc.RootElement.GetProperty("annotations").EnumerateArray().ToList();
            Assert.NotEmpty(detections);
            foreach (var d in detections)
            {
                var b = d.GetProperty("bbox").EnumerateArray().Select(v => v.GetDouble()).ToArray();
                Assert.Equal(5, b.Length);
                Assert.InRange(b[4], -Math.PI / 4, Math.PI / 4);
                var polygon = d.GetProperty("segmentation")[0].EnumerateArray().Select(v => v.GetDouble()).ToArray();
                var corners = new RotatedRectangle(b[0], b[1], b[2], b[3], b[4]).Corners();
                for (int i = 0; i < 8; i++) Assert.Equal(corners[i], polygon[i], 3);
            }
        }

        // an axis-aligned model resumed as a rotated one
        string axis = Path.Combine(dir, "a.pth");
        Assert.Equal(0, Run([.. train[..1], axis, .. train[2..^1]]).Code);
        var resumed = Run([.. train[..1], axis, .. train[2..]]);
        Assert.Equal(CommandLine.Failed, resumed.Code);
        Assert.Contains("axis-aligned", resumed.Err);

        var full = Run("export", model, Path.Combine(dir, "r.onnx"), "--size", "128", "--rotated-bbox");
        Assert.Equal(CommandLine.NotYetSupported, full.Code);
        Assert.Contains("--raw-heads", full.Err);
        string raw = Path.Combine(dir, "raw.onnx");
        var exported = Run("export", model, raw, "--size", "128", "--rotated-bbox", "--raw-heads", "--full-precision");
        Assert.True(exported.Code == 0, exported.Err);
        using var session = new InferenceSession(raw);
        Assert.Equal(new[] { -1, 6 * 27, 16, 16 }, session.OutputMetadata["box_1"].Dimensions);
    }

    [GpuFact]
    public void RotatedTrainingAndInferenceRunOnTheGpu()
    {
        var dir = Paths.TempDir();
        var (annotations, images) = RotatedShapes(dir);
        string model = Path.Combine(dir, "r.pth"), output = Path.Combine(dir, "d.json");
        var trained = Run("train", model, "--annotations", annotations, "--images", images, "--backbone", "ResNet18FPN",
            "--backbone-weights", "none", "--iters", "3", "--batch", "2", "--resize", "128", "--max-size", "128",
            "--jitter", "128", "128", "--device", "cuda", "--score-threshold", "0", "--rotated-bbox");
        Assert.True(trained.Code == 0, trained.Err);
        var inferred = Run("infer", model, "--images", images, "--output", output, "--device", "cuda",
            "--rotated-bbox");
        Assert.True(inferred.Code == 0, inferred.Err);
        using var doc = JsonDocument.Parse(File.ReadAllText(output));
        Assert.All(doc.RootElement.GetProperty("annotations").EnumerateArray(),
            d => Assert.Equal(5, d.GetProperty("bbox").GetArrayLength()));
        Assert.NotEmpty(doc.RootElement.GetProperty("annotations").EnumerateArray());
    }
}
