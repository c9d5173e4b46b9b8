using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using RetinaNet.Model;

namespace RetinaNet.Tests.Export;

/// <summary>Models for export tests: deterministic formula weights (non-trivial frozen batch norm statistics: means
/// ±0.1, variances 1..1.5, scales 0.5..0.75), so any folding or layout mistake shows.</summary>
static class ExportFixtures
{
    public static RetinaNetModel Model(string backbone, int classes = 3)
    {
        var model = new RetinaNetModel(new DetectorConfig { Backbones = [backbone], Classes = classes });
        FormulaWeights.Fill(model);
        model.eval();
        return model;
    }

    public static InferenceSession Session(Onnx.ModelProto proto) => new(proto.ToByteArray());
}
