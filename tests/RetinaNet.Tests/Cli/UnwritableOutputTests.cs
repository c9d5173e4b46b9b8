using RetinaNet.Checkpoints;
using RetinaNet.Cli;
using RetinaNet.Model;
using Xunit;

namespace RetinaNet.Tests.Cli;

/// <summary>Outputs that cannot be written are refused before the work that would produce them, and damaged inputs
/// are named. Tests run as root, whom file modes do not stop: a folder is made unwritable by putting a file where
/// the folder should be, or a folder where the output file should be.</summary>
public class UnwritableOutputTests
{
    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter(); var e = new StringWriter();
        int code = CommandLine.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    static (string Dir, string Annotations, string Images, string Model) Setup()
    {
        var dir = Paths.TempDir();
        var (annotations, images) = ShapesOnDisk.Write(dir, 2, 128, seed: 4);
        var model = Path.Combine(dir, "m.pth");
        using (var m = new RetinaNetModel(new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 3 }))
        {
            m.Initialize(0);
            Checkpoint.Save(model, m);
        }
        return (dir, annotations, images, model);
    }

    static void AssertOneLine(string err, params string[] parts)
    {
        Assert.Single(err.TrimEnd().Split('\n'));
        foreach (var part in parts) Assert.Contains(part, err);
    }

    [Fact]
    public void InferRefusesAnOutputItCannotWriteBeforeRunningInference()
    {
        var (dir, annotations, images, model) = Setup();
        var good = Path.Combine(dir, "good.json");
        // a folder where the output file should go
        var folder = Directory.CreateDirectory(Path.Combine(dir, "taken.json")).FullName;
        var file = Path.Combine(dir, "plain");
        File.WriteAllText(file, "");
        string[] common = ["infer", model, "--annotations", annotations, "--images", images, "--device", "cpu",
            "--resize", "128", "--max-size", "128"];

        var (code, stdout, err) = Run([.. common, "--output", good, folder]);
        Assert.NotEqual(CommandLine.Ok, code);
        AssertOneLine(err, "--output", folder, "is a directory");
        Assert.DoesNotContain("Running inference", stdout); // refused before the work
        Assert.False(File.Exists(good));

        (code, stdout, err) = Run([.. common, "--output", Path.Combine(file, "out.json")]);
        Assert.NotEqual(CommandLine.Ok, code);
        AssertOneLine(err, "--output", Path.Combine(file, "out.json"), $"{file} is a file, not a folder");
        Assert.DoesNotContain("Running inference", stdout);
    }

    [Fact]
    public void TrainRefusesAModelPathOrLogFolderItCannotWriteBeforeTraining()
    {
        var (dir, annotations, images, _) = Setup();
        var file = Path.Combine(dir, "plain");
        File.WriteAllText(file, "");
        var model = Path.Combine(dir, "new.pth");
        string[] common = ["--annotations", annotations, "--images", images, "--backbone", "ResNet18FPN",
            "--classes", "3", "--backbone-weights", "none", "--batch", "1", "--jitter", "128", "128",
            "--max-size", "128", "--iters", "1", "--device", "cpu", "--workers", "1"];

        var logs = Path.Combine(file, "logs");
        var (code, stdout, err) = Run(["train", model, .. common, "--logdir", logs]);
        Assert.NotEqual(CommandLine.Ok, code);
        AssertOneLine(err, "--logdir", logs, $"{file} is a file, not a folder");
        Assert.DoesNotContain("Training", stdout);
        Assert.False(File.Exists(model));

        var folder = Directory.CreateDirectory(Path.Combine(dir, "folder.pth")).FullName;
        (code, stdout, err) = Run(["train", folder, .. common]);
        Assert.NotEqual(CommandLine.Ok, code);
        AssertOneLine(err, "MODEL", folder, "is a directory");
        Assert.DoesNotContain("Training", stdout);
    }

    [Fact]
    public void InferRefusesACheckpointWithBytesChangedInPlace()
    {
        var (dir, annotations, images, model) = Setup();
        var bytes = File.ReadAllBytes(model);
        for (int i = 0; i < 4; i++) bytes[bytes.Length / 2 + i] ^= 0xA5; // same size; inside a weight tensor's data
        File.WriteAllBytes(model, bytes);
        var output = Path.Combine(dir, "d.json");
        var (code, stdout, err) = Run("infer", model, "--annotations", annotations, "--images", images,
            "--device", "cpu", "--output", output);
        Assert.Equal(CommandLine.Failed, code);
        AssertOneLine(err, model, "corrupt", "re-download");
        Assert.DoesNotContain("Running inference", stdout);
        Assert.False(File.Exists(output));
    }
}
