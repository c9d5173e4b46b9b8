using RetinaNet.Export;
using RetinaNet.Inference.Onnx;
using Xunit;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Export;

/// <summary>The exported network (ODTK's raw-heads layout) run by ONNX Runtime equals TorchSharp's forward.</summary>
public class RawHeadsParityTests
{
    [Theory]
    [InlineData("ResNet18FPN", 128, 256)]
    [InlineData("ResNet50FPN", 128, 128)]
    [InlineData("MobileNetV2FPN", 128, 128)]
    public void Fp32RawHeadsEqualTorchSharp(string backbone, int height, int width)
    {
        using var scope = NewDisposeScope();
        using var model = ExportFixtures.Model(backbone);
        var proto = OnnxExporter.Build(model,
            new ExportOptions(height, width) { RawHeads = true, FullPrecision = true });
        using var session = ExportFixtures.Session(proto);
        var input = FormulaWeights.Input(2, 3, height, width); // batch 2 through the symbolic batch dimension
        using var expected = model.forward(input);
        var outputs = OrtTensors.Run(session, new Dictionary<string, Tensor> { [OnnxNames.RawInput] = input });
        Assert.Equal(5, expected.ClassLogits.Length);
        for (int level = 0; level < 5; level++)
        {
            Assertions.RelClose(expected.ClassLogits[level].sigmoid(), outputs[OnnxNames.RawScores(level)], 1e-4,
                $"{backbone} score_{level + 1}");
            Assertions.RelClose(expected.BoxDeltas[level], outputs[OnnxNames.RawBoxes(level)], 1e-4,
                $"{backbone} box_{level + 1}");
        }
    }
}
