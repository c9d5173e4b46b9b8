using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Onnx;
using RetinaNet.Checkpoints;
using RetinaNet.Model;
using RetinaNet.Training;
using Xunit;
using static RetinaNet.Native.Scalars;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Training;

/// <summary>The ImageNet ResNet18 converted from NuGet's ONNX (<see cref="PackagedResNet18"/>), checked against ONNX
/// Runtime running the package's own graph.</summary>
public class PackagedResNet18Tests
{
    static string Package => PackagedResNet18.FindPackage()
        ?? throw new InvalidOperationException($"NuGet's {PackagedResNet18.Package} {PackagedResNet18.Version} " +
            "is missing: the build's restore downloads it (PackageDownload)");

    [Fact]
    public void ConvertedWeightsFillTheResNet18BodyExactly()
    {
        var weights = PackagedResNet18.Convert(Package);
        using var model = new RetinaNetModel(new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 3 });
        var body = model.BackboneModules.Single().Backbone.Body;
        StateDict.Load(body, weights, "packaged"); // every key present with its shape, nothing left over
        Assert.Equal(StateDict.Of(body).Count, weights.Count);
    }

    /// <summary>conv1 + bn1 + ReLU on torchvision's normalised RGB with the folded weights equals the package's first
    /// three nodes on CNTK's input (BGR·255 minus the mean image's channel averages) away from the border, where the
    /// two zero paddings differ.</summary>
    [Fact]
    public void FoldedStemMatchesTheOnnxGraphOnCntkInput()
    {
        var package = Package;
        var onnx = ModelProto.Parser.ParseFrom(
            File.ReadAllBytes(Path.Combine(package, "DnnImageModels/ResNet18Onnx/ResNet18.onnx")));
        var relu = onnx.Graph.Node.First(n => n.OpType == "Relu").Output[0];
        onnx.Graph.Output.Add(new ValueInfoProto { Name = relu }); // expose the stem's output
        var prep = ModelProto.Parser.ParseFrom(
            File.ReadAllBytes(Path.Combine(package, "DnnImageModels/ResNetPrepOnnx/ResNetPreprocess.onnx")));
        // B, G, R
        var channelMean = RetinaNet.Export.OnnxTensors.ToTensor(prep.Graph.Initializer.Single()).mean([0, 2, 3]);

        var generator = new TorchSharp.torch.Generator(7);
        var rgb = rand([1, 3, 224, 224], generator: generator) * Of(255);
        var cntkInput = (rgb.flip(1) - channelMean.view(1, 3, 1, 1)).contiguous();
        using var session = new InferenceSession(onnx.ToByteArray());
        var input = new DenseTensor<float>(cntkInput.data<float>().ToArray(), [1, 3, 224, 224]);
        using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor(onnx.Graph.Input[0].Name, input) },
            new[] { relu });
        var expected = tensor(results.Single().AsTensor<float>().ToArray(), [1, 64, 112, 112]);

        var w = PackagedResNet18.Convert(package);
        var normalised = (rgb / Of(255) - tensor(RetinaNet.Data.Loading.DeviceBatch.Mean).view(1, 3, 1, 1))
            / tensor(RetinaNet.Data.Loading.DeviceBatch.Std).view(1, 3, 1, 1);
        var conv = nn.functional.conv2d(normalised, w["conv1.weight"], strides: [2, 2], padding: [3, 3]);
        var scale = w["bn1.weight"] / w["bn1.running_var"].Plus(Of(1e-5)).sqrt();
        var ours = nn.functional.relu((conv * scale.view(1, -1, 1, 1))
            .Plus((w["bn1.bias"] - w["bn1.running_mean"] * scale).view(1, -1, 1, 1)));

        var a = ours[.., .., 4..^4, 4..^4];
        var b = expected[.., .., 4..^4, 4..^4];
        double diff = (a - b).abs().max().item<float>(), range = b.abs().max().item<float>();
        Assert.True(range > 1, $"the stem's output is degenerate (max {range})");
        Assert.True(diff < 1e-3 * range, $"folded stem differs from the ONNX graph by {diff} (output range {range})");
    }
}
