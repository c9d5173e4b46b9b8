using RetinaNet.Checkpoints;
using RetinaNet.Cli;
using RetinaNet.Export;
using RetinaNet.Export.Quantization;
using Xunit;

namespace RetinaNet.Tests.Export;

/// <summary><c>retinanet export --int8</c> end to end on ODTK's ResNet18FPN fixture checkpoint.</summary>
public class Int8ExportCommandTests
{
    // A checkpoint with the export tests' formula weights, and a few images.
    static readonly Lazy<(string Model, string Images)> Shared = new(() =>
    {
        var dir = Paths.TempDir();
        var (_, images) = ShapesOnDisk.Write(dir, count: 3, size: 128, seed: 5);
        var model = Path.Combine(dir, "m.pth");
        using (var m = ExportFixtures.Model("ResNet18FPN", classes: 3)) Checkpoint.Save(model, m);
        return (model, images);
    });

    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        int code = CommandLine.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Theory]
    [InlineData("tensorrt", "Calibrating (percentile) on 3 images")]
    [InlineData(null, "Calibrating 81 tensors (percentile, ONNX Runtime) on 3 images")] // the default: onnxruntime
    public void CalibratesWritesTheTableAndAQdqModelThenReusesTheTable(string? target, string calibrating)
    {
        var dir = Paths.TempDir();
        var (model, images) = Shared.Value;
        string table = Path.Combine(dir, "int8.cache"), first = Path.Combine(dir, "a.onnx"),
            second = Path.Combine(dir, "b.onnx");
        string[] targetOption = target is null ? [] : ["--int8-target", target];
        var (code, output, error) = Run(["export", model, first, "--size", "128", "--int8",
            "--calibration-images", images, "--calibration-table", table,
            "--calibration-method", "percentile", "--calibration-percentile", "99.9", "--batch", "2",
            "--calibration-batches", "2", "--device", "cpu", .. targetOption]);
        Assert.True(code == CommandLine.Ok, error);
        Assert.Contains(calibrating, output);
        Assert.Contains("int8 QDQ (PercentileCalibration)", output);
        var written = CalibrationTableFile.Load(table);
        Assert.Equal("PercentileCalibration", written.Algorithm);
        var exported = OnnxExporter.Load(first);
        // ranges by convolution (its input) for TensorRT; by tensor, each quantized convolution's input and output,
        // for ONNX Runtime
        using (var m = Checkpoint.Load(model).Model)
        {
            var floatGraph = OnnxExporter.Build(m, new ExportOptions(128, 128) { FullPrecision = true });
            var floats = Int8Policy.FloatConvolutions(m);
            var convolutions = floatGraph.Graph.Node.Where(n =>
                n.OpType == "Conv" && !floats.Contains(OnnxNames.ModulePathOf(n.Name))).ToList();
            Assert.Equal(
                target == "tensorrt" ? convolutions.Select(c => OnnxNames.ModulePathOf(c.Name)).Distinct().Order()
                : convolutions.SelectMany(c => new[] { c.Input[0], c.Output[0] }).Select(Producer).Distinct().Order(),
                written.Scales.Keys.Order());
            string Producer(string tensor) =>
                floatGraph.Graph.Node.Where(n => n.Input.Contains(tensor)).ToList() is [{ OpType: "Relu" } relu]
                && !convolutions.Any(c => c.Input[0] == tensor) ? relu.Output[0] : tensor;
        }
        Assert.Contains(exported.Graph.Node, n => n.OpType == "QuantizeLinear");
        Assert.Equal("int8", exported.MetadataProps.Single(p => p.Key == OnnxExporter.PrecisionKey).Value);
        Assert.Equal(target ?? "onnxruntime", exported.MetadataProps.Single(p => p.Key == Int8Export.TargetKey).Value);
        // weights as int8, but for the two float output layers
        Assert.Equal(["box_head.8.weight", "cls_head.8.weight"], exported.Graph.Initializer
            .Where(i => i.Name.EndsWith(".weight", StringComparison.Ordinal)).Select(i => i.Name).Order());
        Assert.All(exported.Graph.Initializer.Where(i => i.Name.EndsWith(".weight.int8", StringComparison.Ordinal)),
            i => Assert.Equal(Onnx.TensorProto.Types.DataType.Int8, (Onnx.TensorProto.Types.DataType)i.DataType));

        // the table exists now: it is read, and the images are not needed
        (code, output, error) = Run(
            ["export", model, second, "--size", "128", "--int8", "--calibration-table", table, .. targetOption]);
        Assert.True(code == CommandLine.Ok, error);
        Assert.Contains($"Using calibration table {table}", output);
        Assert.DoesNotContain("Calibrating", output);
        Assert.Equal(File.ReadAllBytes(first), File.ReadAllBytes(second));
    }

    [Theory]
    [InlineData("--calibration-method: calibration method 'kl' is not one of minmax, entropy, percentile",
        "--calibration-method", "kl")]
    [InlineData("--calibration-percentile: expected a percentage in (0, 100], got 120",
        "--calibration-percentile", "120")]
    [InlineData("--calibration-table", "--calibration-table", "/nonexistent/dir/int8.cache")]
    public void BadInt8OptionsGiveOneLineAndExitCode2(string message, params string[] options)
    {
        var (model, images) = Shared.Value;
        var (code, _, error) = Run(["export", model, Path.Combine(Paths.TempDir(), "m.onnx"), "--int8",
            "--calibration-images", images, .. options]);
        Assert.Equal(CommandLine.BadUsage, code);
        Assert.Contains(message, error);
        Assert.Single(error.TrimEnd().Split('\n'));
    }

    [Fact]
    public void ATableOfAnotherModelIsAOneLineError()
    {
        var dir = Paths.TempDir();
        var table = Path.Combine(dir, "other.cache");
        File.WriteAllText(table, "TRT-8601-EntropyCalibration2\nimages: 3b66eddc\n");
        var (code, _, error) = Run("export", Shared.Value.Model, Path.Combine(dir, "m.onnx"), "--size", "128", "--int8",
            "--calibration-table", table);
        Assert.NotEqual(CommandLine.Ok, code);
        Assert.Contains("no range for", error);
        Assert.Single(error.TrimEnd().Split('\n'));
        Assert.False(File.Exists(Path.Combine(dir, "m.onnx")));
    }

    [Theory]
    [InlineData("tensorrt", "INT8 calibration: convolution backbones.ResNet18FPN.")]
    [InlineData("onnxruntime", "INT8 calibration: backbones.ResNet18FPN.")]
    public void AModelWhoseActivationsAreNotFiniteIsAOneLineError(string target, string message)
    {
        // ODTK's fixture checkpoint holds one constant per tensor, batch-norm variances included, some negative: NaN
        var odtk = Paths.Fixture("odtk", "odtk_resnet18fpn_3classes.pth");
        var (code, _, error) = Run("export", odtk, Path.Combine(Paths.TempDir(), "m.onnx"), "--size", "128", "--int8",
            "--calibration-images", Shared.Value.Images, "--device", "cpu", "--int8-target", target);
        Assert.Equal(CommandLine.Failed, code);
        Assert.Contains(message, error);
        Assert.Contains("NaN or infinite", error);
        Assert.Single(error.TrimEnd().Split('\n'));
    }
}
