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

    [Fact]
    public void CalibratesWritesTheTableAndAQdqModelThenReusesTheTable()
    {
        var dir = Paths.TempDir();
        var (model, images) = Shared.Value;
        string table = Path.Combine(dir, "int8.cache"), first = Path.Combine(dir, "a.onnx"), second = Path.Combine(dir, "b.onnx");
        var (code, output, error) = Run("export", model, first, "--size", "128", "--int8", "--calibration-images", images, "--calibration-table", table,
            "--calibration-method", "percentile", "--calibration-percentile", "99.9", "--batch", "2", "--calibration-batches", "2", "--device", "cpu");
        Assert.True(code == CommandLine.Ok, error);
        Assert.Contains("Calibrating (percentile) on 3 images", output);
        Assert.Contains("int8 QDQ (PercentileCalibration)", output);
        var written = CalibrationTableFile.Load(table);
        Assert.Equal("PercentileCalibration", written.Algorithm);
        Assert.Equal(36, written.Scales.Count);

        var exported = OnnxExporter.Load(first);
        Assert.Contains(exported.Graph.Node, n => n.OpType == "QuantizeLinear");
        Assert.Equal("int8", exported.MetadataProps.Single(p => p.Key == OnnxExporter.PrecisionKey).Value);
        Assert.All(exported.Graph.Initializer.Where(i => i.Name.EndsWith(".weight", StringComparison.Ordinal)),
            i => Assert.Equal(Onnx.TensorProto.Types.DataType.Float, (Onnx.TensorProto.Types.DataType)i.DataType)); // the float32 graph underneath

        // the table exists now: it is read, and the images are not needed
        (code, output, error) = Run("export", model, second, "--size", "128", "--int8", "--calibration-table", table);
        Assert.True(code == CommandLine.Ok, error);
        Assert.Contains($"Using calibration table {table}", output);
        Assert.DoesNotContain("Calibrating", output);
        Assert.Equal(File.ReadAllBytes(first), File.ReadAllBytes(second));
    }

    [Theory]
    [InlineData("--calibration-method: calibration method 'kl' is not one of minmax, entropy, percentile", "--calibration-method", "kl")]
    [InlineData("--calibration-percentile: expected a percentage in (0, 100], got 120", "--calibration-percentile", "120")]
    [InlineData("--calibration-table", "--calibration-table", "/nonexistent/dir/int8.cache")]
    public void BadInt8OptionsGiveOneLineAndExitCode2(string message, params string[] options)
    {
        var (model, images) = Shared.Value;
        var (code, _, error) = Run(["export", model, Path.Combine(Paths.TempDir(), "m.onnx"), "--int8", "--calibration-images", images, .. options]);
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
        var (code, _, error) = Run("export", Shared.Value.Model, Path.Combine(dir, "m.onnx"), "--size", "128", "--int8", "--calibration-table", table);
        Assert.NotEqual(CommandLine.Ok, code);
        Assert.Contains("no range for", error);
        Assert.Single(error.TrimEnd().Split('\n'));
        Assert.False(File.Exists(Path.Combine(dir, "m.onnx")));
    }

    [Fact]
    public void AModelWhoseActivationsAreNotFiniteIsAOneLineError()
    {
        // ODTK's fixture checkpoint holds one constant per tensor, batch-norm variances included, some negative: NaN
        var odtk = Paths.Fixture("odtk", "odtk_resnet18fpn_3classes.pth");
        var (code, _, error) = Run("export", odtk, Path.Combine(Paths.TempDir(), "m.onnx"), "--size", "128", "--int8",
            "--calibration-images", Shared.Value.Images, "--device", "cpu");
        Assert.Equal(CommandLine.Failed, code);
        Assert.Contains("INT8 calibration: convolution backbones.ResNet18FPN.", error);
        Assert.Contains("NaN or infinite", error);
        Assert.Single(error.TrimEnd().Split('\n'));
    }
}
