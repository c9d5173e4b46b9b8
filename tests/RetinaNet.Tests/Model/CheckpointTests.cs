using RetinaNet.Boxes;
using RetinaNet.Checkpoints;
using RetinaNet.Model;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Model;

public class CheckpointTests
{
    [Fact]
    public void OdtkCheckpointLoadsWithEveryWeightInPlace()
    {
        // Made by tests/fixtures/make_odtk_checkpoint.py in ODTK's layout; every tensor is one value from its key.
        var loaded = Checkpoint.Load(Paths.Fixture("odtk", "odtk_resnet18fpn_3classes.pth"));
        using var model = loaded.Model;
        Assert.Equal(["ResNet18FPN"], model.Config.Backbones);
        Assert.Equal(3, model.Classes);
        Assert.Equal(1234, loaded.State!.Iteration);
        Assert.NotNull(loaded.State.Optimizer);
        int checkedCount = 0;
        foreach (var (key, t) in StateDict.Of(model))
        {
            if (StateDict.IsBatchCounter(key)) continue;
            float expected = (float)((FormulaWeights.Fnv1a(key) % 1000) / 1000.0 - 0.5);
            using var value = expected.ToScalar();
            Assert.True(t.eq(value).all().item<bool>(), $"{key} was not loaded from the checkpoint");
            checkedCount++;
        }
        Assert.True(checkedCount > 100);
    }

    [Theory]
    [InlineData("model.pth")]
    [InlineData("model.safetensors")]
    public void SaveLoadRoundTripKeepsWeightsAndConfiguration(string name)
    {
        var dir = Paths.TempDir();
        var path = Path.Combine(dir, name);
        torch.manual_seed(5);
        var config = new DetectorConfig
        {
            Backbones = ["MobileNetV2FPN"], Classes = 4,
            Anchors = new AnchorConfig { Ratios = [0.5, 1, 2, 3], Scales = [4, 6] },
            Inference = new InferenceConfig
            {
                ScoreThreshold = 0.3, TopN = 50, NmsThreshold = 0.6, Detections = 7, Resize = 320, MaxSize = 512,
            },
            AnchorIous = (0.3, 0.6),
        };
        using var model = new RetinaNetModel(config);
        model.Initialize(5);
        Checkpoint.Save(path, model,
            name.EndsWith(".pth") ? new TrainingState(42, new Dictionary<string, object?> { ["lr"] = 0.01 }) : null);
        Assert.Equal([path], Directory.GetFiles(dir)); // no temporary file left
        var loaded = Checkpoint.Load(path);
        using var copy = loaded.Model;
        Assert.Equal(config.Backbones, copy.Config.Backbones);
        Assert.Equal(config.Anchors.Ratios, copy.Config.Anchors.Ratios);
        Assert.Equal(config.Anchors.Scales, copy.Config.Anchors.Scales);
        Assert.Equal(config.Inference, copy.Config.Inference);
        Assert.Equal(config.AnchorIous, copy.Config.AnchorIous);
        if (name.EndsWith(".pth")) Assert.Equal(42, loaded.State!.Iteration);
        var a = StateDict.Of(model); var b = StateDict.Of(copy);
        Assert.Equal(a.Keys.OrderBy(k => k), b.Keys.OrderBy(k => k));
        foreach (var key in a.Keys) Assert.True(a[key].equal(b[key]).all().item<bool>(), key);
    }

    [Theory]
    [InlineData("model.pth")]
    [InlineData("model.safetensors")]
    public void OurOlderCheckpointsWithoutAnInputSizeGetTheDefaultOne(string name)
    {
        var path = Path.Combine(Paths.TempDir(), name);
        var stored = new InferenceConfig { Detections = 7, Resize = 320, MaxSize = 512 };
        var config = new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 2, Inference = stored };
        using (var model = new RetinaNetModel(config)) Checkpoint.Save(path, model);
        // written before the input size was stored: the same file less its two entries
        if (name.EndsWith(".pth"))
        {
            var root = (OrderedDictionary<string, object?>)TorchCheckpointFile.Load(path)!;
            var inference = (OrderedDictionary<string, object?>)root["inference"]!;
            Assert.True(inference.Remove("resize") && inference.Remove("max_size"));
            TorchCheckpointFile.Save(path, root);
        }
        else
        {
            var weights = SafeTensorsFile.Load(path, out var metadata);
            var json = System.Text.Json.Nodes.JsonNode.Parse(metadata["retinanet"])!.AsObject();
            var inference = json["inference"]!.AsObject();
            Assert.True(inference.Remove("resize") && inference.Remove("max_size"));
            metadata["retinanet"] = json.ToJsonString();
            SafeTensorsFile.Save(path, weights, metadata);
        }
        using var old = Checkpoint.Load(path).Model;
        Assert.Equal(stored with { Resize = 800, MaxSize = 1333 }, old.Config.Inference);
    }

    [Fact]
    public void SafeTensorsWrittenBeforeTheMetadataWasTheCheckpointsFieldsStillLoad()
    {
        var path = Path.Combine(Paths.TempDir(), "old.safetensors");
        using (var model = new RetinaNetModel(new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 2 }))
            Checkpoint.Save(path, model);
        var weights = SafeTensorsFile.Load(path, out var metadata);
        // the metadata as our releases before this one wrote it (a C# record's property names)
        metadata["retinanet"] = """
            {"Backbones":["ResNet18FPN"],"Classes":2,"Ratios":[1,2,0.5],"Scales":[4,5.0396842,6.3496042],"AnchorIous":[0.4,0.5],
             "ScoreThreshold":0.3,"TopN":500,"Nms":0.6,"Detections":50,"Resize":640,"MaxSize":800,
             "Categories":[{"Id":7,"Name":"cell"},{"Id":9,"Name":"dust"}]}
            """;
        SafeTensorsFile.Save(path, weights, metadata);
        using var old = Checkpoint.Load(path).Model;
        Assert.Equal(new InferenceConfig { ScoreThreshold = 0.3, TopN = 500, NmsThreshold = 0.6, Detections = 50,
            Resize = 640, MaxSize = 800 }, old.Config.Inference);
        Assert.Equal([new Category(7, "cell"), new Category(9, "dust")], old.Config.Categories);
        Assert.Equal([4, 5.0396842, 6.3496042], old.Config.Anchors.Scales);
    }

    [Fact]
    public void AFailedSaveLeavesThePreviousCheckpointIntact()
    {
        var dir = Paths.TempDir();
        var path = Path.Combine(dir, "model.pth");
        using var model = new RetinaNetModel(new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 2 });
        Checkpoint.Save(path, model, new TrainingState(1));
        var before = File.ReadAllBytes(path);
        // An optimizer state the writer cannot serialise makes the save fail half-way through.
        Assert.ThrowsAny<Exception>(() => Checkpoint.Save(path, model,
            new TrainingState(2, new Dictionary<string, object?> { ["bad"] = new object() })));
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(dir));
        using var reloaded = Checkpoint.Load(path).Model;
    }

    [Fact]
    public void WrongKindsOfFilesAreNamedInTheError()
    {
        var dir = Paths.TempDir();
        var text = Path.Combine(dir, "notes.pth");
        File.WriteAllText(text, "this is not a checkpoint");
        var e = Assert.ThrowsAny<CheckpointFormatException>(() => Checkpoint.Load(text));
        Assert.Contains(text, e.Message);

        var weights = Paths.ImageNetResNet18(pth: true);
        var bare = Assert.ThrowsAny<CheckpointFormatException>(() => Checkpoint.Load(weights));
        Assert.Contains("--backbone-weights", bare.Message);
    }

    [Fact]
    public void BackboneWeightsOfTheWrongNetworkAreRefused()
    {
        using var model = new RetinaNetModel(new DetectorConfig { Backbones = ["ResNet50FPN"], Classes = 2 });
        var e = Assert.Throws<InvalidDataException>(() =>
            BackboneWeights.Load(model, Paths.ImageNetResNet18(pth: true)));
        Assert.Contains("resnet50", e.Message);
    }
}
