using RetinaNet.Boxes;
using RetinaNet.Export;
using RetinaNet.Inference;
using RetinaNet.Inference.Onnx;
using Xunit;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Export;

/// <summary>The default export (float16 weights and activations; normalisation, decode and NMS in float32) against
/// TorchSharp in float32. Measured on these fixtures (ONNX Runtime CPU, which runs float16 convolutions by casting
/// around float32 kernels, so every layer boundary rounds to float16 as a GPU would): raw heads
/// max |error| / max |value| 3.4e-4 (scores) and 9.5e-4 (box deltas) for ResNet18FPN, 5.7e-4 and 6.7e-4 for
/// ResNet50FPN, 1.4e-2 and 1.8e-2 for MobileNetV2FPN (depthwise layers); README "Export" quotes these.
/// The tolerances below leave 3x headroom.</summary>
public class Fp16ExportTests
{
    [Theory]
    [InlineData("ResNet18FPN", 3e-3)]
    [InlineData("ResNet50FPN", 3e-3)]
    public void Fp16RawHeadsAreCloseToFp32(string backbone, double tolerance)
    {
        using var scope = NewDisposeScope();
        using var model = ExportFixtures.Model(backbone);
        var proto = OnnxExporter.Build(model, new ExportOptions(128, 128) { RawHeads = true });
        Assert.Contains(proto.Graph.Initializer,
            i => i.Name.EndsWith(".weight") && i.DataType == (int)Onnx.TensorProto.Types.DataType.Float16);
        using var session = ExportFixtures.Session(proto);
        var input = FormulaWeights.Input(1, 3, 128, 128);
        using var expected = model.forward(input);
        var outputs = OrtTensors.Run(session, new Dictionary<string, Tensor> { [OnnxNames.RawInput] = input });
        for (int level = 0; level < 5; level++)
        {
            Assertions.RelClose(expected.ClassLogits[level].sigmoid(), outputs[OnnxNames.RawScores(level)], tolerance,
                $"fp16 score_{level + 1}");
            Assertions.RelClose(expected.BoxDeltas[level], outputs[OnnxNames.RawBoxes(level)], tolerance,
                $"fp16 box_{level + 1}");
            // and not equal: the graph really computes in float16
            Assert.True((expected.BoxDeltas[level] - outputs[OnnxNames.RawBoxes(level)]).abs().max().item<float>()
                > 1e-6, "fp16 graph gave float32 results");
        }
    }

    /// <summary>Detections: near-equal scores may swap places in float16, so each of the 10 best float16 detections
    /// must have a float32 twin of the same class with IoU &gt;= 0.95 and a score within 1e-3.</summary>
    [Fact]
    public void Fp16DetectionsMatchFp32()
    {
        using var scope = NewDisposeScope();
        using var model = ExportFixtures.Model("ResNet18FPN");
        using var host = DetectionParityTests.Batch(128, 128);
        using var runner = new DetectionRunner(model, CPU, null);
        var expected = runner.Detect(host);
        var path = Path.Combine(Paths.TempDir(), "fp16.onnx");
        OnnxExporter.Save(OnnxExporter.Build(model, new ExportOptions(128, 128)), path);
        using var detector = OnnxDetector.Open(path, new OrtExecution(), TextWriter.Null);
        var actual = detector.Detect(host);
        for (int i = 0; i < expected.Count; i++)
        {
            var (e, a) = (expected[i], actual[i]);
            Assert.True(a.Count >= 10, $"image {i}: {a.Count} detections");
            using var ious = BoxOps.PairwiseIou(Corners(a), Corners(e));
            for (int j = 0; j < 10; j++)
            {
                bool twin = Enumerable.Range(0, e.Count).Any(k => e.Classes[k] == a.Classes[j]
                    && ious[j, k].item<float>() >= 0.95 && Math.Abs(e.Scores[k] - a.Scores[j]) <= 1e-3);
                Assert.True(twin,
                    $"image {i}: fp16 detection {j} (class {a.Classes[j]}, score {a.Scores[j]}) has no fp32 twin");
            }
        }
    }

    // COCO [x, y, w, h] -> inclusive corners [N, 4]
    static Tensor Corners(ImageDetections d) =>
        tensor(Enumerable.Range(0, d.Count).SelectMany(j => new[] { d.Boxes[4 * j], d.Boxes[4 * j + 1],
            d.Boxes[4 * j] + d.Boxes[4 * j + 2] - 1, d.Boxes[4 * j + 1] + d.Boxes[4 * j + 3] - 1 }).ToArray(),
            [d.Count, 4]);
}
