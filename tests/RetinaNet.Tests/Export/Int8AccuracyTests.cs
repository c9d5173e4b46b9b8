using RetinaNet.Checkpoints;
using RetinaNet.Cli;
using RetinaNet.Data;
using RetinaNet.Data.Coco;
using RetinaNet.Evaluation;
using RetinaNet.Export;
using RetinaNet.Export.Quantization;
using RetinaNet.Inference;
using RetinaNet.Inference.Onnx;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Export;

/// <summary>INT8 on a trained detector: the demo's model (shared with the demo's test, trained once per run) exported
/// float32 and INT8 QDQ, both run by ONNX Runtime's CPU provider on the demo's held-out images.</summary>
[Collection("global torch RNG")]
public class Int8AccuracyTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(Int8Target.OnnxRuntime)]
    [InlineData(Int8Target.TensorRt)]
    public void Int8QdqModelKeepsTheTrainedDemoModelsMapWithinOnePointOfFloat(Int8Target target)
    {
        var demo = TrainedDemo.Result;
        Assert.True(demo.ExitCode == CommandLine.Ok, demo.Output);
        var dir = Paths.TempDir();
        // calibrate on training images only: the held-out (val_) images are what gets scored
        var calibrationImages = Directory.CreateDirectory(Path.Combine(dir, "calibration")).FullName;
        foreach (var file in Directory.GetFiles(demo.Images)
            .Where(f => !Path.GetFileName(f).StartsWith("val_", StringComparison.Ordinal)).Order().Take(32))
            File.Copy(file, Path.Combine(calibrationImages, Path.GetFileName(file)));

        using var model = Checkpoint.Load(demo.Model).Model;
        var export = new ExportOptions(128, 128) { FullPrecision = true };
        string floatPath = Path.Combine(dir, "fp32.onnx"), int8Path = Path.Combine(dir, "int8.onnx"),
            tablePath = Path.Combine(dir, "int8.cache");
        var floatGraph = OnnxExporter.Build(model, export);
        OnnxExporter.Save(floatGraph, floatPath);
        var log = new StringWriter();
        var table = Int8Export.Table(model, floatGraph, export,
            new Int8Options(new CalibrationSettings(CalibrationMethod.Entropy), calibrationImages, tablePath,
                Batch: 8, Batches: 4, CPU, target), log);
        var int8 = floatGraph.Clone();
        Int8Export.Quantize(int8, model, table, target);
        OnnxExporter.Save(int8, int8Path);
        Assert.True(File.Exists(tablePath), log.ToString());
        Assert.Contains("on 32 images", log.ToString());

        var val = CocoFile.Load(demo.ValAnnotations);
        var dataset = DetectionDataset.FromCoco(val, demo.Images, TextWriter.Null);
        double Map(string path)
        {
            using var detector = OnnxDetector.Open(path, new OrtExecution(), TextWriter.Null);
            return CocoEvaluator.Evaluate(val, InferenceJob.Detect(detector, dataset,
                new InferenceOptions(CPU, 8, 128, 128), TextWriter.Null)).Stats[0];
        }
        double floatMap = Map(floatPath), int8Map = Map(int8Path);
        output.WriteLine($"mAP float32 {floatMap:F4}, INT8 QDQ for {target} {int8Map:F4} " +
            $"(ONNX Runtime CPU, {dataset.Count} held-out images)");

        Assert.True(floatMap >= 0.02,
            $"the demo model's float mAP {floatMap} is too low for the comparison to mean anything");
        Assert.True(Math.Abs(int8Map - floatMap) <= 0.01,
            $"INT8 mAP {int8Map:F4} vs float {floatMap:F4}: more than 1 point apart");
        // it is the quantized model that was scored
        Assert.Contains(int8.Graph.Node, n => n.OpType == "QuantizeLinear");
    }
}
