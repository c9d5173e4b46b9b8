using System.Text.Json;
using RetinaNet.Checkpoints;
using RetinaNet.Cli;
using RetinaNet.Export;
using RetinaNet.Model;
using Xunit;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Cli;

/// <summary>A model's settings (post-processing, input size) as train stores them and infer/export use them: an
/// option given on the command line wins, else the checkpoint's value, else the default.</summary>
public class SettingsPrecedenceTests
{
    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        int code = CommandLine.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Not the defaults anywhere: score 0 keeps --detections per image of an untrained model (whose scores
    /// sit near the 0.01 prior, under the default 0.05); 128 px images become 256 px, a whole input (no
    /// padding).</summary>
    static readonly InferenceConfig Stored = new() { ScoreThreshold = 0, Detections = 7, Resize = 256, MaxSize = 288 };

    static (string Dir, string Images, string Model) Setup(InferenceConfig? stored, int images = 3)
    {
        var dir = Paths.TempDir();
        var (_, imageDir) = ShapesOnDisk.Write(dir, images, 128, seed: 3);
        var model = Path.Combine(dir, "m.pth");
        var config = new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 3, Inference = stored ?? new() };
        using (var m = new RetinaNetModel(config))
        {
            m.Initialize(0);
            // boxes are the anchors, all inside an unpadded image: none is dropped as empty when mapped back
            using (no_grad())
                foreach (var kv in StateDict.Of(m).Where(kv => kv.Key.StartsWith("box_head.8."))) kv.Value.zero_();
            Checkpoint.Save(model, m);
        }
        if (stored is null)
        {
            // as ODTK writes it: no 'inference' entry at all
            var root = (OrderedDictionary<string, object?>)TorchCheckpointFile.Load(model)!;
            Assert.True(root.Remove("inference"));
            TorchCheckpointFile.Save(model, root);
        }
        return (dir, imageDir, model);
    }

    static int Detections(string odtkJson)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(odtkJson));
        return doc.RootElement.GetProperty("annotations").GetArrayLength();
    }

    [Fact]
    public void InferUsesTheCheckpointsSettingsUnlessAnOptionIsGiven()
    {
        var (dir, images, model) = Setup(Stored);
        string output = Path.Combine(dir, "d.json");
        string[] common = ["infer", model, "--images", images, "--output", output, "--device", "cpu",
            "--workers", "1"];

        var (code, stdout, err) = Run(common);
        Assert.True(code == CommandLine.Ok, err);
        Assert.Contains("resize 256, max size 288", stdout);
        Assert.Equal(3 * 7, Detections(output));

        (code, stdout, err) = Run([.. common, "--detections", "5", "--resize", "128", "--max-size", "128"]);
        Assert.True(code == CommandLine.Ok, err);
        Assert.Contains("resize 128, max size 128", stdout);
        Assert.Equal(3 * 5, Detections(output));
    }

    [Fact]
    public void ACheckpointWithoutSettingsGetsTheDefaults()
    {
        var (dir, images, model) = Setup(null, images: 1);
        using (var loaded = Checkpoint.Load(model).Model) Assert.Equal(new InferenceConfig(), loaded.Config.Inference);
        string output = Path.Combine(dir, "d.json");
        var (code, stdout, err) = Run("infer", model, "--images", images, "--output", output, "--device", "cpu",
            "--workers", "1", "--score-threshold", "0");
        Assert.True(code == CommandLine.Ok, err);
        Assert.Contains("resize 800, max size 1333", stdout);
        // 100 kept, less those in the padding (800 px in an 896 px input), which map back to nothing
        Assert.InRange(Detections(output), 50, 100);
    }

    [Fact]
    public void ExportBakesInTheCheckpointsSettingsAndInferOfTheExportUsesItsInputSize()
    {
        var (dir, images, model) = Setup(Stored);
        string onnx = Path.Combine(dir, "m.onnx"), output = Path.Combine(dir, "d.json");
        var (code, _, err) = Run("export", model, onnx, "--size", "256", "--full-precision");
        Assert.True(code == CommandLine.Ok, err);
        var meta = OnnxExporter.Load(onnx).MetadataProps.ToDictionary(p => p.Key, p => p.Value);
        Assert.Contains("score>=0 ", meta[OnnxExporter.InferenceKey]);
        Assert.Contains("detections=7", meta[OnnxExporter.InferenceKey]);
        Assert.Equal("256", meta[OnnxExporter.ResizeKey]);
        Assert.Equal("288", meta[OnnxExporter.MaxSizeKey]);

        string[] infer = ["infer", onnx, "--images", images, "--output", output, "--device", "cpu", "--workers", "1"];
        (code, var stdout, err) = Run(infer);
        Assert.True(code == CommandLine.Ok, err);
        Assert.Contains("resize 256, max size 288", stdout);
        Assert.Equal(3 * 7, Detections(output));
        (code, stdout, err) = Run([.. infer, "--resize", "128"]);
        Assert.True(code == CommandLine.Ok, err);
        Assert.Contains("resize 128, max size 288", stdout);

        (code, _, err) = Run("export", model, onnx, "--size", "256", "--full-precision", "--detections", "5");
        Assert.True(code == CommandLine.Ok, err);
        meta = OnnxExporter.Load(onnx).MetadataProps.ToDictionary(p => p.Key, p => p.Value);
        Assert.Contains("detections=5", meta[OnnxExporter.InferenceKey]);
        Assert.Contains("score>=0 ", meta[OnnxExporter.InferenceKey]);
    }

    [Fact]
    public void TrainStoresItsInputSizeTakesTheCategoryCountAndWarnsAboutALateSchedule()
    {
        var dir = Paths.TempDir();
        var (annotations, images) = ShapesOnDisk.Write(dir, 2, 128, seed: 4);
        var model = Path.Combine(dir, "m.pth");
        string[] train = ["train", model, "--annotations", annotations, "--images", images,
            "--backbone", "ResNet18FPN", "--backbone-weights", "none", "--batch", "1", "--jitter", "96", "96",
            "--resize", "96", "--max-size", "112", "--device", "cpu", "--workers", "1", "--iters", "1"];
        var (code, _, err) = Run(train); // ODTK's --warmup 1000 and --milestones 60000 80000
        Assert.True(code == CommandLine.Ok, err);
        Assert.Contains("warning: --warmup 1000 is beyond --iters 1", err);
        Assert.Contains("warning: --milestones 60000 80000 are beyond --iters 1", err);
        var loaded = Checkpoint.Load(model);
        using (loaded.Model)
        {
            Assert.Equal(3, loaded.Model.Classes); // the file's 3 categories, not ODTK's 80
            Assert.Equal((96, 112), (loaded.Model.Config.Inference.Resize, loaded.Model.Config.Inference.MaxSize));
        }

        // the same model, already trained: a schedule within --iters gives no warning
        (code, _, err) = Run([.. train, "--warmup", "1", "--milestones", "1"]);
        Assert.True(code == CommandLine.Ok, err);
        Assert.DoesNotContain("warning", err);

        (code, var stdout, err) = Run("infer", model, "--images", images, "--output", Path.Combine(dir, "d.json"),
            "--device", "cpu");
        Assert.True(code == CommandLine.Ok, err);
        Assert.Contains("resize 96, max size 112", stdout); // the training scale, not 800
    }

    public static TheoryData<string, string, string[]> ClassMismatches => new()
    {
        { "fewer classes than categories",
            "--classes 2: {A} has 3 categories, more than the model can predict; pass --classes 3",
            ["--classes", "2"] },
        { "validation ids the model does not hold", "--val-annotations: {V} has category id 4, which {A} lacks",
            ["--val-annotations", "{V}"] },
        { "validation lacking a training id", "--val-annotations: {W} lacks category id 3 of {A}",
            ["--val-annotations", "{W}"] },
        { "no categories", "--annotations: {E} lists no categories", ["--annotations", "{E}"] },
    };

    [Theory]
    [MemberData(nameof(ClassMismatches))]
    public void AClassMismatchIsOneLineNamingTheFileAndTheFix(string _, string message, string[] options)
    {
        var dir = Paths.TempDir();
        var (annotations, images) = ShapesOnDisk.Write(dir, 1, 128, seed: 6);
        string Json(string name, string ids)
        {
            var path = Path.Combine(dir, name);
            var categories = string.Join(", ", ids.Split(' ', StringSplitOptions.RemoveEmptyEntries)
                .Select(id => $$"""{"id": {{id}}, "name": "c{{id}}"}"""));
            File.WriteAllText(path, $$"""{"images": [], "annotations": [], "categories": [{{categories}}]}""");
            return path;
        }
        var files = new Dictionary<string, string>
        {
            ["{A}"] = annotations, ["{V}"] = Json("val.json", "1 2 4"), ["{W}"] = Json("val2.json", "1 2"),
            ["{E}"] = Json("empty.json", ""),
        };
        string Fill(string s) => files.Aggregate(s, (acc, kv) => acc.Replace(kv.Key, kv.Value));
        var (code, _, err) = Run(["train", Path.Combine(dir, "m.pth"), "--annotations", annotations,
            "--images", images, "--device", "cpu", .. options.Select(Fill)]);
        Assert.Equal(CommandLine.BadUsage, code);
        Assert.Contains(Fill(message), err);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.False(File.Exists(Path.Combine(dir, "m.pth")));
    }

    [Fact]
    public void TheDemosDefaultOutputIsGitIgnored()
    {
        string output = CommandRegistry.Find("demo")!.Spec(0).Find("--output")!.Default![0];
        var ignored = File.ReadAllLines(Path.Combine(Paths.RepositoryRoot(), ".gitignore")).Select(l => l.Trim())
            .ToList();
        Assert.True(ignored.Any(l => l == $"/{output}/" || l == $"{output}/"), $".gitignore lacks {output}/");
    }
}
