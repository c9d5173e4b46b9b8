using RetinaNet.Boxes;
using RetinaNet.Checkpoints;
using RetinaNet.Inference;
using RetinaNet.Model;
using RetinaNet.Native;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Model;

public class ModelTests
{
    [Fact]
    public void HeadsHaveOdtkShapesNamesAndInitialisation()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(1);
        using var model = new RetinaNetModel(new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 5 });
        model.Initialize(1);
        var sd = StateDict.Of(model);
        Assert.Contains("backbones.ResNet18FPN.features.layer4.1.bn2.running_var", sd.Keys);
        Assert.Contains("backbones.ResNet18FPN.pyramid7.weight", sd.Keys);
        Assert.Equal(new long[] { 45, 256, 3, 3 }, sd["cls_head.8.weight"].shape);
        Assert.Equal(new long[] { 36, 256, 3, 3 }, sd["box_head.8.weight"].shape);
        Assertions.Close(-Math.Log(99), sd["cls_head.8.bias"][0].item<float>(), 1e-5, "prior bias");
        Assertions.Close(0.01, sd["cls_head.0.weight"].std().item<float>(), 2e-4, "head std");
        // Frozen batch norm: nothing in the backbone body's norms is trainable.
        Assert.DoesNotContain(model.named_parameters(), p => p.name.Contains(".bn"));

        using var heads = model.forward(rand(2, 3, 256, 384));
        Assert.Equal(5, heads.ClassLogits.Length);
        Assert.Equal(new long[] { 2, 45, 32, 48 }, heads.ClassLogits[0].shape);
        Assert.Equal(new long[] { 2, 36, 2, 3 }, heads.BoxDeltas[4].shape);
    }

    /// <summary>A seeded initialisation sets every parameter of every backbone from its seed alone: two models built
    /// after different global seeds (and with global draws in between, as another thread may make) end equal, and a
    /// different seed gives different weights.</summary>
    [Fact]
    public void InitializeSetsEveryParameterFromItsSeedAlone()
    {
        foreach (var backbone in Backbones.Names)
        {
            using var scope = NewDisposeScope();
            var config = new DetectorConfig { Backbones = [backbone], Classes = 2 };
            Dictionary<string, float[]> Build(long globalSeed, long seed)
            {
                torch.manual_seed(globalSeed);
                using var model = new RetinaNetModel(config);
                rand(1000).Dispose(); // a draw from the global generator between construction and initialisation
                model.Initialize(seed);
                return model.named_parameters().ToDictionary(p => p.name, p => p.parameter.data<float>().ToArray());
            }
            var a = Build(1, 7);
            var b = Build(2, 7);
            var c = Build(1, 8);
            if (backbone == "ResNet18FPN")
            {
                // torch.nn.init's definitions: Kaiming normal, fan-out 64*7*7;
                // Xavier-uniform bound sqrt(6/(fan in+out))
                var stem = a.Single(kv => kv.Key.EndsWith("conv1.weight") && kv.Value.Length == 64 * 3 * 7 * 7).Value;
                Assertions.Close(Math.Sqrt(2.0 / (64 * 49)), Std(stem), 0.03 * Math.Sqrt(2.0 / (64 * 49)), "stem std");
                var p6 = a["backbones.ResNet18FPN.pyramid6.weight"];
                double bound = Math.Sqrt(6.0 / (512 * 9 + 256 * 9));
                Assert.True(p6.Max() <= bound && p6.Max() > 0.99 * bound, $"pyramid6 max {p6.Max()}, bound {bound}");
            }
            foreach (var (name, values) in a)
            {
                Assert.True(values.SequenceEqual(b[name]), $"{backbone}: {name} depends on the global generator");
                if (values.Any(v => v != values[0])) // not a constant (a norm's ones, a bias's zeros)
                    Assert.False(values.SequenceEqual(c[name]), $"{backbone}: {name} ignores the seed");
            }
        }
    }

    static double Std(float[] v)
    {
        double mean = v.Average(x => (double)x);
        return Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / v.Length);
    }

    [Fact]
    public void TwoBackbonesConcatenateTheirLevels()
    {
        using var scope = NewDisposeScope();
        using var model = new RetinaNetModel(
            new DetectorConfig { Backbones = ["ResNet18FPN", "MobileNetV2FPN"], Classes = 2 });
        using var heads = model.forward(rand(1, 3, 128, 128));
        Assert.Equal(10, heads.ClassLogits.Length);
    }

    [Fact]
    public void RejectsInputsThatAreNotMultiplesOfTheStride()
    {
        using var model = new RetinaNetModel(new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 2 });
        var e = Assert.Throws<ArgumentException>(() => model.forward(zeros(1, 3, 100, 128)));
        Assert.Contains("multiples of 128", e.Message);
    }

    [Fact]
    public void ForwardBackwardGivesFiniteGradientsToTrainableParametersOnly()
    {
        // as a Trainer does: libtorch's oneDNN gets the heads' input gradients wrong (CpuNumericsTests)
        using var exact = RetinaNet.Native.CpuNumerics.ExactGradients();
        using var scope = NewDisposeScope();
        var targets = tensor(new float[] { 10, 20, 60, 40, 1, 100, 30, 50, 80, 2, 0, 0, 30, 30, 0, -1, -1, -1, -1, -1 },
            [2, 2, 5]);
        var (model, loss) = TrainingLoss.Once(CPU, 128, 256, targets);
        using var _ = model;
        loss.backward();
        Assert.True(float.IsFinite(loss.item<float>()));
        foreach (var (name, p) in model.named_parameters())
        {
            Assert.True(p.grad is not null, $"{name} has no gradient");
            Assert.False(p.grad!.isnan().any().item<bool>(), $"{name} gradient has NaN");
        }
    }
}

/// <summary>One training forward pass of a fresh ResNet18FPN (3 classes) on random images: model
/// and total loss.</summary>
static class TrainingLoss
{
    public static (RetinaNetModel Model, Tensor Loss) Once(Device device, int height, int width, Tensor targets,
        KernelOptions? kernels = null)
    {
        torch.manual_seed(2);
        var config = new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 3 };
        var model = new RetinaNetModel(config, kernels);
        model.Initialize(2);
        model.to(device).train();
        var heads = model.forward(rand(targets.shape[0], 3, height, width).to(device));
        using var generator = new AnchorGenerator(config.Anchors);
        var anchors = generator.For(height, width, heads);
        var (cls, box) = new DetectionLoss(config, model.Kernels).Compute(heads, anchors, targets.to(device));
        return (model, cls.Plus(box));
    }
}

public class ModelDeviceTests
{
    [Fact]
    public void ModelMovesBetweenDtypesAndKeepsItsWeights()
    {
        // Module.to walks every submodule; TorchSharp's ModuleDict broke it, so the backbones use their own container.
        using var model = new RetinaNetModel(
            new RetinaNet.Model.DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 2 });
        var before = RetinaNet.Model.StateDict.Of(model)["cls_head.8.weight"].clone();
        model.to(TorchSharp.torch.ScalarType.Float64).to(TorchSharp.torch.CPU);
        Assert.Equal(TorchSharp.torch.ScalarType.Float64,
            RetinaNet.Model.StateDict.Of(model)["cls_head.8.weight"].dtype);
        model.to(TorchSharp.torch.ScalarType.Float32);
        Assert.True(RetinaNet.Model.StateDict.Of(model)["cls_head.8.weight"].equal(before).all().item<bool>());
        Assert.Contains("backbones.ResNet18FPN.features.conv1.weight", RetinaNet.Model.StateDict.Of(model).Keys);
    }
}
