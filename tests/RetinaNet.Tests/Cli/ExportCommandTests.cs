using System.Text.Json;
using RetinaNet.Checkpoints;
using RetinaNet.Cli;
using RetinaNet.Export;
using RetinaNet.Tests.Export;
using Xunit;

namespace RetinaNet.Tests.Cli;

/// <summary>`retinanet export` and `retinanet infer MODEL.onnx` end to end, in-process: the exported model runs through
/// the same loader, mapping, JSON writing and evaluation as the checkpoint, and bad input gets one line.</summary>
public class ExportCommandTests
{
    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        int code = CommandLine.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    static readonly Lazy<(string Dir, string Annotations, string Images, string Model)> Shared = new(() =>
    {
        var dir = Paths.TempDir();
        var (annotations, images) = ShapesOnDisk.Write(dir, 3, 128, seed: 5, "gt.json");
        var model = Path.Combine(dir, "m.pth");
        using (var m = ExportFixtures.Model("ResNet18FPN", classes: 3)) Checkpoint.Save(model, m);
        return (dir, annotations, images, model);
    });

    [Fact]
    public void InferWithTheExportedModelGivesTheCheckpointsDetections()
    {
        var (dir, annotations, images, model) = Shared.Value;
        var onnx = Path.Combine(dir, "exported.onnx");
        var (code, stdout, err) = Run("export", model, onnx, "--size", "128", "--full-precision");
        Assert.True(code == CommandLine.Ok, err);
        Assert.Contains("Exported ResNet18FPN (3 classes)", stdout);

        // 128x128 images, resized to at most 128: the checkpoint's batches are 128x128 too, as the exported input.
        var common = new[] { "--images", images, "--annotations", annotations, "--resize", "128", "--max-size", "128",
            "--device", "cpu", "--workers", "1", "--batch", "2" };
        string fromOnnx = Path.Combine(dir, "onnx.json"), fromPth = Path.Combine(dir, "pth.json");
        (code, stdout, err) = Run(["infer", onnx, "--output", fromOnnx, .. common]);
        Assert.True(code == CommandLine.Ok, err);
        Assert.Contains("ONNX Runtime", stdout);
        Assert.Contains("Average Precision", stdout); // evaluated as the checkpoint is
        (code, _, err) = Run(["infer", model, "--output", fromPth, .. common]);
        Assert.True(code == CommandLine.Ok, err);

        var expected = Detections(fromPth);
        var actual = Detections(fromOnnx);
        Assert.True(expected.Count > 30, $"{expected.Count} detections");
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Image, actual[i].Image);
            Assert.Equal(expected[i].Category, actual[i].Category);
            Assertions.Close(expected[i].Score, actual[i].Score, 1e-4, $"detection {i} score");
            for (int k = 0; k < 4; k++)
                Assertions.Close(expected[i].Box[k], actual[i].Box[k], 1e-3, $"detection {i} bbox[{k}]");
        }
    }

    static List<(long Image, long Category, double Score, double[] Box)> Detections(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        return doc.RootElement.GetProperty("annotations").EnumerateArray()
            .Select(d => (d.GetProperty("image_id").GetInt64(), d.GetProperty("category_id").GetInt64(),
                d.GetProperty("score").GetDouble(),
                d.GetProperty("bbox").EnumerateArray().Select(x => x.GetDouble()).ToArray())).ToList();
    }

    [Fact]
    public void VerboseExportDescribesTheGraphAndRawHeadsTakeOdtksNames()
    {
        var (dir, _, _, model) = Shared.Value;
        var path = Path.Combine(dir, "raw.onnx");
        var (code, stdout, err) = Run("export", model, path, "--size", "128", "256", "--raw-heads", "--verbose");
        Assert.True(code == CommandLine.Ok, err);
        Assert.Contains("input  input_1 [batch, 3, 128, 256] Float", stdout);
        Assert.Contains("output score_5 [batch, 27, 1, 2] Float", stdout);
        Assert.Contains("Conv ", stdout);
        var proto = OnnxExporter.Load(path);
        Assert.Equal(Enumerable.Range(1, 5).Select(i => $"score_{i}")
            .Concat(Enumerable.Range(1, 5).Select(i => $"box_{i}")).Order(),
            proto.Graph.Output.Select(o => o.Name).Order());
    }

    public static TheoryData<string, int, string, string[]> BadInput => new()
    {
        { "model is not a checkpoint", CommandLine.BadUsage, "has the wrong extension, expected .pth or .safetensors",
            ["export", "{DIR}/m.onnx", "{DIR}/out.onnx"] },
        { "size not a multiple of 128", CommandLine.BadUsage, "--size: 200 must be a positive multiple of 128",
            ["export", "{MODEL}", "{DIR}/out.onnx", "--size", "200"] },
        { "three sizes", CommandLine.BadUsage, "--size: expected one (square) or two (height width) values",
            ["export", "{MODEL}", "{DIR}/out.onnx", "--size", "128", "128", "128"] },
        { "opset", CommandLine.BadUsage, "--opset: 11 is not supported; use 13..18",
            ["export", "{MODEL}", "{DIR}/out.onnx", "--opset", "11"] },
        { "raw heads engine", CommandLine.BadUsage, "--raw-heads exports the network alone",
            ["export", "{MODEL}", "{DIR}/out.plan", "--raw-heads"] },
        { "no folder", CommandLine.BadUsage, "create", ["export", "{MODEL}", "/nonexistent/dir/out.onnx"] },
        { "engine without TensorRT", CommandLine.Failed,
            "cannot build a TensorRT engine: this build's ONNX Runtime (Microsoft.ML.OnnxRuntime, CPU only) " +
            "has no TensorRT execution provider: build with -p:OnnxRuntime=gpu",
            ["export", "{MODEL}", "{DIR}/out.plan", "--size", "128"] },
        { "post-processing of an export", CommandLine.BadUsage, "--nms: post-processing is part of an exported model",
            ["infer", "{DIR}/m.onnx", "--images", "{IMAGES}", "--nms", "0.3"] },
        { "raw heads run by infer", CommandLine.Failed, "was exported with --raw-heads",
            ["infer", "{DIR}/raw-only.onnx", "--images", "{IMAGES}", "--device", "cpu"] },
        { "not an onnx file", CommandLine.Failed, "is not an ONNX model",
            ["infer", "{DIR}/garbage.onnx", "--images", "{IMAGES}", "--device", "cpu"] },
    };

    [Theory]
    [MemberData(nameof(BadInput))]
    public void BadInputGivesOneLine(string _, int exitCode, string message, string[] args)
    {
        var (dir, _, images, model) = Shared.Value;
        var work = Paths.TempDir();
        File.WriteAllText(Path.Combine(work, "m.onnx"), "not used");
        File.WriteAllBytes(Path.Combine(work, "garbage.onnx"), [0xFF, 0xFF, 0xFF, 0x07, 0x01]);
        if (args.Any(a => a.Contains("raw-only")))
            Assert.Equal(CommandLine.Ok,
                Run("export", model, Path.Combine(work, "raw-only.onnx"), "--size", "128", "--raw-heads").Code);
        var real = args.Select(a => a.Replace("{DIR}", work).Replace("{MODEL}", model).Replace("{IMAGES}", images))
            .ToArray();
        var (code, _, err) = Run(real);
        Assert.Equal(exitCode, code);
        Assert.Contains(message, err);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.False(File.Exists(Path.Combine(work, "out.onnx")) || File.Exists(Path.Combine(work, "out.plan")),
            "nothing is written on failure");
    }
}
