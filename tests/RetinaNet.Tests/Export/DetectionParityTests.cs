using RetinaNet.Data.Loading;
using RetinaNet.Data.Transforms;
using RetinaNet.Export;
using RetinaNet.Inference;
using RetinaNet.Inference.Onnx;
using RetinaNet.Model;
using Xunit;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Export;

/// <summary>The full exported graph (normalisation and padding mask, network, decode, NMS) run by ONNX Runtime gives
/// the detections of our TorchSharp path (DetectionRunner: DeviceBatch, forward, Postprocess, BatchedNms) on the same
/// host batch: images smaller than the canvas, so the padding mask matters.</summary>
public class DetectionParityTests
{
    internal static HostBatch Batch(int height, int width)
    {
        (int H, int W)[] sizes = [(100, 90), (height, width - 40)];
        var images = sizes.Select((s, i) =>
        {
            var pixels = ExportFixtures.NoiseImage(s.H, s.W, seed: 10 + i);
            return new PreparedImage(i, 10 + i, new ImageWithBoxes(pixels, [], []), s.W, s.H);
        }).ToList();
        var batch = HostBatch.Collate(images, [false, false], Fpn.Stride, pin: false, canvas: (height, width));
        foreach (var image in images) image.Dispose();
        return batch;
    }

    [Theory]
    [InlineData("ResNet18FPN", 128, 256, 1000, 100, 0.05)] // not square: height and width must not swap
    [InlineData("ResNet50FPN", 128, 128, 1000, 100, 0.05)]
    [InlineData("ResNet18FPN", 128, 256, 3, 20, 0.0)] // 15 candidates for 20 detections: the padded tail
    public void Fp32DetectionsEqualTorchSharp(string backbone, int height, int width, int topN, int detections,
        double threshold)
    {
        using var scope = NewDisposeScope();
        using var model = ExportFixtures.Model(backbone);
        model.UseInferenceSettings(
            new InferenceConfig { TopN = topN, Detections = detections, ScoreThreshold = threshold });
        using var host = Batch(height, width);
        using var runner = new DetectionRunner(model, CPU, null);
        var expected = runner.Detect(host);

        var dir = Paths.TempDir();
        var path = Path.Combine(dir, "model.onnx");
        OnnxExporter.Save(OnnxExporter.Build(model, new ExportOptions(height, width) { FullPrecision = true }), path);
        using var detector = OnnxDetector.Open(path, new OrtExecution(), TextWriter.Null);
        Assert.Equal((height, width), detector.InputSize);
        var actual = detector.Detect(host);

        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            var (e, a) = (expected[i], actual[i]);
            Assert.Equal(e.ImageId, a.ImageId);
            Assert.True(e.Count >= 5, $"image {i}: only {e.Count} detections, too few to compare");
            Assert.Equal(e.Count, a.Count);
            Assert.Equal(e.Classes, a.Classes);
            for (int j = 0; j < e.Count; j++)
            {
                Assertions.Close(e.Scores[j], a.Scores[j], 1e-4, $"image {i} detection {j} score");
                for (int k = 0; k < 4; k++)
                    Assertions.Close(e.Boxes[4 * j + k], a.Boxes[4 * j + k], 1e-3, $"image {i} detection {j} box[{k}]");
            }
        }
    }
}
