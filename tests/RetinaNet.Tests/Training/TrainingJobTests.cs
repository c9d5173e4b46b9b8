using RetinaNet.Checkpoints;
using RetinaNet.Data.Imaging;
using RetinaNet.Data.Synthetic;
using RetinaNet.Data.Transforms;
using RetinaNet.Model;
using RetinaNet.Training;
using Xunit;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Training;

/// <summary>Runs alone: model initialisation draws from torch's global generator, which tests running in parallel
/// would otherwise consume in between.</summary>
[CollectionDefinition("global torch RNG", DisableParallelization = true)]
public class GlobalTorchRng;

/// <summary>Whole training runs on the CPU on a tiny synthetic dataset the test writes itself.</summary>
[Collection("global torch RNG")]
public class TrainingJobTests
{
    static (string Annotations, string Images) TinyDataset(string dir, int count = 6) =>
        ShapesOnDisk.Write(dir, count, 128, seed: 5);

    static TrainingJobOptions Options(string model, (string Annotations, string Images) data, long iterations,
        Action<long>? after = null) => new()
    {
        ModelPath = model, Annotations = data.Annotations, Images = data.Images, Device = CPU, BackboneWeights = "none",
        Config = new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 3 },
        Settings = new TrainingSettings
        {
            Iterations = iterations, Batch = 2, Seed = 9,
            Schedule = new LearningRateSchedule(0.01, 2, [5]),
            CheckpointInterval = TimeSpan.FromHours(1), LogInterval = TimeSpan.FromHours(1),
        },
        Augment = new AugmentationOptions(96, 160, 160, Rotate: true,
            Brightness: 0.1, Contrast: 0.1, Saturation: 0.1, Hue: 0.02),
        Workers = 2, AfterIteration = after,
    };

    static Dictionary<string, float[]> Weights(string path)
    {
        using var model = Checkpoint.Load(path).Model;
        return StateDict.Of(model)
            .ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.Float32).data<float>().ToArray());
    }

    [Fact]
    public void InterruptedAndResumedRunEndsWithTheSameWeightsAsAnUninterruptedOne()
    {
        var dir = Paths.TempDir();
        var data = TinyDataset(dir);
        string straight = Path.Combine(dir, "straight.pth"), resumed = Path.Combine(dir, "resumed.pth");
        manual_seed(0);
        TrainingJob.Run(Options(straight, data, 6), TextWriter.Null, TextWriter.Null, CancellationToken.None);

        manual_seed(0);
        using (var stop = new CancellationTokenSource())
        {
            long reached = TrainingJob.Run(Options(resumed, data, 6, i => { if (i == 3) stop.Cancel(); }),
                TextWriter.Null, TextWriter.Null, stop.Token);
            Assert.Equal(3, reached); // stopped as Ctrl-C stops: a checkpoint at iteration 3
        }
        Assert.Equal(3, Checkpoint.Load(resumed).State!.Iteration);
        manual_seed(123); // the resumed run must not depend on the process's RNG
        TrainingJob.Run(Options(resumed, data, 6), TextWriter.Null, TextWriter.Null, CancellationToken.None);

        var a = Weights(straight);
        var b = Weights(resumed);
        Assert.Equal(a.Keys, b.Keys);
        foreach (var key in a.Keys)
            Assert.True(a[key].SequenceEqual(b[key]), $"{key} differs between the straight and the resumed run");
        Assert.Equal(6, Checkpoint.Load(resumed).State!.Iteration);
        // and training changed the weights at all
        using var fresh = new RetinaNetModel(new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 3 });
        Assert.False(a["cls_head.8.weight"].SequenceEqual(new float[a["cls_head.8.weight"].Length]));
    }

    /// <summary>Two identical seeded CPU trainings give identical per-iteration losses and identical weights, with one
    /// loader thread and with the default. libtorch's junk fill (every new CPU allocation a NaN pattern) is switched on
    /// first: any read of memory nobody wrote (the padded oneDNN layouts that made CPU training NaN at random
    /// iterations) then shows on every run instead of one in three.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(0)]
    public void SeededCpuTrainingIsBitwiseReproducible(int workers)
    {
        var dir = Paths.TempDir();
        var data = TinyDataset(dir);
        (List<(double Focal, double Box)> Losses, Dictionary<string, float[]> Weights) Train(string name)
        {
            var losses = new List<(double, double)>();
            var path = Path.Combine(dir, name);
            var options = Options(path, data, 8) with
            {
                Workers = workers,
                Settings = Options(path, data, 8).Settings with { LogInterval = TimeSpan.Zero },
                OnMetrics = (_, m) =>
                {
                    if (m.TryGetValue(MetricsPoster.FocalLoss, out var f)) losses.Add((f, m[MetricsPoster.BoxLoss]));
                },
            };
            RetinaNet.Native.CpuNumerics.JunkFill(true);
            try { TrainingJob.Run(options, TextWriter.Null, TextWriter.Null, CancellationToken.None); }
            finally { RetinaNet.Native.CpuNumerics.JunkFill(false); }
            return (losses, Weights(path));
        }
        var (lossesA, weightsA) = Train("a.pth");
        var (lossesB, weightsB) = Train("b.pth");
        Assert.Equal(8, lossesA.Count);
        Assert.All(lossesA,
            l => Assert.True(double.IsFinite(l.Focal) && double.IsFinite(l.Box), $"loss {l} is not finite"));
        Assert.Equal(lossesA, lossesB); // exact doubles
        Assert.Equal(weightsA.Keys, weightsB.Keys);
        foreach (var key in weightsA.Keys)
            Assert.True(weightsA[key].SequenceEqual(weightsB[key]), $"{key} differs between two identical runs");
    }

    [Theory]
    [InlineData("missing image")]
    [InlineData("broken annotations")]
    [InlineData("missing validation image")]
    public void BadDataIsReportedBeforeAnyWeightsAreLookedUp(string damage)
    {
        var dir = Paths.TempDir();
        var data = TinyDataset(dir, 2);
        var options = Options(Path.Combine(dir, "m.pth"), data, 1) with { BackboneWeights = null }; // torchvision's
        string image = Directory.GetFiles(data.Images).Order().First(), named;
        switch (damage)
        {
            case "missing image": File.Delete(image); named = image + ": "; break;
            case "broken annotations":
                File.WriteAllText(data.Annotations, "{\"images\": [");
                named = data.Annotations + ": ";
                break;
            default:
                var valImages = Directory.CreateDirectory(Path.Combine(dir, "val")).FullName;
                options = options with { ValAnnotations = data.Annotations, ValImages = valImages };
                named = valImages + Path.DirectorySeparatorChar; // its first image
                break;
        }
        // The torch hub cache under a file: a weights lookup fails at once (no network tried) with another error.
        var blocker = Path.Combine(dir, "torch-home");
        File.WriteAllText(blocker, "");
        var saved = Environment.GetEnvironmentVariable("TORCH_HOME");
        Environment.SetEnvironmentVariable("TORCH_HOME", blocker);
        try
        {
            var stdout = new StringWriter();
            var e = Assert.Throws<RetinaNet.Data.BadInputException>(
                () => TrainingJob.Run(options, stdout, TextWriter.Null, CancellationToken.None));
            Assert.StartsWith(named, e.Message);
            Assert.DoesNotContain("Downloading", stdout.ToString());
        }
        finally { Environment.SetEnvironmentVariable("TORCH_HOME", saved); }
    }

    [Fact]
    public void OverrideStartsOverInsteadOfResuming()
    {
        var dir = Paths.TempDir();
        var data = TinyDataset(dir, 4);
        var model = Path.Combine(dir, "m.pth");
        TrainingJob.Run(Options(model, data, 2), TextWriter.Null, TextWriter.Null, CancellationToken.None);
        var log = new StringWriter();
        TrainingJob.Run(Options(model, data, 2), log, TextWriter.Null, CancellationToken.None);
        Assert.Contains("already trained for 2 iterations", log.ToString());
        var again = new StringWriter();
        TrainingJob.Run(Options(model, data, 1) with { Override = true }, again, TextWriter.Null,
            CancellationToken.None);
        Assert.Equal(1, Checkpoint.Load(model).State!.Iteration);
    }

    [Fact]
    public void FineTuneKeepsEveryWeightButTheClassOutputAndChangesTheClassCount()
    {
        var dir = Paths.TempDir();
        var source = Path.Combine(dir, "source.pth");
        manual_seed(1);
        using (var m = new RetinaNetModel(new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 5 }))
        {
            m.Initialize(1);
            Checkpoint.Save(source, m);
        }
        var options = Options(Path.Combine(dir, "tuned.pth"), ("unused.json", dir), 1)
            with { FineTune = source, Config = new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 3 } };
        var (tuned, resume) = TrainingJob.Prepare(options, TextWriter.Null);
        using var _ = tuned;
        Assert.Null(resume);
        Assert.Equal(3, tuned.Config.Classes);
        var before = Weights(source);
        var after = StateDict.Of(tuned)
            .ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.Float32).data<float>().ToArray());
        // 9 anchors x 3 classes outputs, 3x3 over 256 channels
        Assert.Equal(9 * 3 * 256 * 9, after["cls_head.8.weight"].Length);
        Assert.Equal(9 * 5 * 256 * 9, before["cls_head.8.weight"].Length);
        foreach (var key in before.Keys.Where(k => !k.StartsWith("cls_head.8.")))
            Assert.True(before[key].SequenceEqual(after[key]), $"{key} did not carry over");
    }
}

[Collection("global torch RNG")]
public class TrainingFailureTests
{
    [Fact]
    public void ADivergingLossStopsWithTheIterationAndAdvice()
    {
        var dir = Paths.TempDir();
        var (annotations, images) = ShapesOnDisk.Write(dir, 4, 128, seed: 3);
        var options = new TrainingJobOptions
        {
            ModelPath = Path.Combine(dir, "m.pth"), Annotations = annotations, Images = images, Device = CPU,
            BackboneWeights = "none",
            Config = new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 3 },
            Settings = new TrainingSettings
            {
                Iterations = 6, Batch = 2, Schedule = new LearningRateSchedule(1e6, 0, []),
                LogInterval = TimeSpan.FromHours(1), CheckpointInterval = TimeSpan.FromHours(1)
            },
            Augment = new AugmentationOptions(128, 128, 128), Workers = 1,
        };
        var e = Assert.Throws<TrainingDivergedException>(() =>
            TrainingJob.Run(options, TextWriter.Null, TextWriter.Null, CancellationToken.None));
        Assert.Matches(@"NaN or infinite at iteration [1-6]\b", e.Message);
        Assert.Contains("--lr", e.Message);
        Assert.False(File.Exists(options.ModelPath)); // no checkpoint of damaged weights
    }
}
