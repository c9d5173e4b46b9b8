using System.Text.Json;
using RetinaNet.Checkpoints;
using RetinaNet.Model;
using Xunit;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Model;

/// <summary>Our bodies against torchvision's outputs for the same weights (fixtures by
/// tests/fixtures/make_backbone_fixtures.py).</summary>
public class BackboneParityTests
{
    public static TheoryData<string, string> Cases => new()
    {
        { "ResNet18FPN", "resnet18" }, { "ResNet34FPN", "resnet34" }, { "ResNet50FPN", "resnet50" },
        { "ResNet101FPN", "resnet101" }, { "ResNet152FPN", "resnet152" }, { "ResNeXt50_32x4dFPN", "resnext50_32x4d" },
        { "ResNeXt101_32x8dFPN", "resnext101_32x8d" }, { "MobileNetV2FPN", "mobilenet_v2" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void BodyMatchesTorchvision(string backbone, string fixture)
    {
        using var scope = NewDisposeScope();
        using var body = Backbones.CreateBody(backbone);
        FormulaWeights.Fill(body);
        body.eval();
        AssertMatchesFixture(body, fixture);
    }

    [Fact]
    public void FormulaMatchesFixtureDebugValues()
    {
        // Guards the shared formula itself: the script recorded the first key's hash and values.
        var meta = JsonDocument.Parse(File.ReadAllText(Paths.Fixture("backbones", "resnet18.json"))).RootElement;
        Assert.Equal(3027112943u, FormulaWeights.Fnv1a("bn1.bias"));
        var v = FormulaWeights.Values("bn1.bias", [64]);
        Assertions.Close(-0.07400773465633392, v[0], 1e-8, "bn1.bias[0]");
        Assertions.Close(-0.021349526941776276, v[1], 1e-8, "bn1.bias[1]");
        Assert.True(meta.GetProperty("outputs").TryGetProperty("c5", out _));
    }

    [Fact]
    public void RealImageNetResNet18LoadsAndMatchesTorchvision()
    {
        foreach (var file in new[] { Paths.ImageNetResNet18(pth: true), Paths.ImageNetResNet18() })
        {
            using var scope = NewDisposeScope();
            using var model = new RetinaNetModel(new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 2 });
            BackboneWeights.Load(model, file);
            var body = model.BackboneModules.Single().Backbone.Body;
            body.eval();
            AssertMatchesFixture(body, "resnet18_imagenet");
        }
    }

    static void AssertMatchesFixture(FeatureBody body, string fixture)
    {
        var meta = JsonDocument.Parse(File.ReadAllText(Paths.Fixture("backbones", fixture + ".json"))).RootElement;
        var shape = meta.GetProperty("input_shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        using var noGrad = no_grad();
        var outputs = body.forward(FormulaWeights.Input(shape));
        string[] names = ["c3", "c4", "c5"];
        for (int i = 0; i < 3; i++)
        {
            var o = meta.GetProperty("outputs").GetProperty(names[i]);
            var expectedShape = o.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var bytes = File.ReadAllBytes(Paths.Fixture("backbones", o.GetProperty("file").GetString()!));
            var expected = tensor(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes).ToArray(),
                expectedShape);
            Assertions.RelClose(expected, outputs[i], 1e-5, $"{fixture} {names[i]}");
        }
    }
}
