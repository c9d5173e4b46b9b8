using RetinaNet.Cli;
using Xunit;

namespace RetinaNet.Tests.Cli;

public class CommandLineTests
{
    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter(); var e = new StringWriter();
        int code = CommandLine.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    static readonly string Dir = Paths.TempDir();
    static string Annotations => Touch("train.json", "{}");
    static string Touch(string name, string content)
    {
        var p = Path.Combine(Dir, name); File.WriteAllText(p, content); return p;
    }
    static string Odtk => Paths.Fixture("odtk", "odtk_resnet18fpn_3classes.pth");

    // ODTK's options, copied from its main.py (the reference for name parity).
    public static TheoryData<string, string> OdtkOptions()
    {
        var d = new TheoryData<string, string>();
        foreach (var o in "--annotations --images --backbone --classes --batch --resize --max-size --jitter --iters --milestones --schedule --full-precision --lr --warmup --gamma --override --val-annotations --val-images --post-metrics --fine-tune --logdir --val-iters --with-dali --augment-rotate --augment-free --augment-brightness --augment-contrast --augment-hue --augment-saturation --regularization-l2 --rotated-bbox --anchor-ious --absolute-angle".Split(' '))
            d.Add("train", o);
        foreach (var o in "--images --annotations --output --batch --resize --max-size --with-dali --full-precision --rotated-bbox".Split(' ')) d.Add("infer", o);
        foreach (var o in "--size --batch --full-precision --int8 --calibration-batches --calibration-images --calibration-table --verbose --rotated-bbox --dynamic-batch-opts --opset".Split(' ')) d.Add("export", o);
        foreach (var c in new[] { "train", "infer", "export" })
            foreach (var o in "--score-threshold --top-n --nms --detections".Split(' ')) d.Add(c, o);
        d.Add("train", "--device"); d.Add("infer", "--device");
        return d;
    }

    [Theory]
    [MemberData(nameof(OdtkOptions))]
    public void EveryOdtkOptionIsAccepted(string command, string option)
    {
        var spec = CommandRegistry.Find(command)!.Spec(2);
        Assert.NotNull(spec.Find(option));
        Assert.Contains(option, spec.Usage());
    }

    [Fact]
    public void OdtkDefaultsAreKept()
    {
        var a = ArgParser.Parse(CommandRegistry.Find("train")!.Spec(2), ["m.pth", "--annotations", "a.json"]);
        Assert.Equal(["ResNet50FPN"], a.Strings("--backbone"));
        Assert.Equal(800, a.Int("--resize")); Assert.Equal(1333, a.Int("--max-size"));
        Assert.Null(a.OptionalInt("--classes")); // ours: the file's category count (SettingsPrecedenceTests)
        Assert.Null(a.GivenInt("--resize")); // defaulted, not given: a checkpoint's value would win
        Assert.Equal([640, 1024], a.Ints("--jitter")); Assert.Equal(90000, a.Int("--iters"));
        Assert.Equal([60000, 80000], a.Ints("--milestones"));
        Assert.Equal(0.01, a.Double("--lr")); Assert.Equal(1000, a.Int("--warmup"));
        Assert.Equal(0.1, a.Double("--gamma"));
        Assert.Equal(8000, a.Int("--val-iters")); Assert.Equal(0.0001, a.Double("--regularization-l2"));
        Assert.Equal([0.4, 0.5], a.Doubles("--anchor-ious"));
        Assert.Equal(0.002, a.Double("--augment-brightness")); Assert.Equal(0.0002, a.Double("--augment-hue"));
        var e = ArgParser.Parse(CommandRegistry.Find("export")!.Spec(2), ["m.pth", "m.onnx"]);
        Assert.Equal([1280], e.Ints("--size")); Assert.Equal(2, e.Int("--batch"));
        Assert.Equal([1, 8, 16], e.Ints("--dynamic-batch-opts"));
    }

    [Fact]
    public void MultiValueOptionsStopAtTheNextOption()
    {
        var a = ArgParser.Parse(CommandRegistry.Find("train")!.Spec(2), ["m.pth", "--backbone", "ResNet18FPN",
            "MobileNetV2FPN", "--milestones", "--annotations=a.json", "--anchor-ratios", "0.5", "1"]);
        Assert.Equal(["ResNet18FPN", "MobileNetV2FPN"], a.Strings("--backbone"));
        Assert.Empty(a.Ints("--milestones"));
        Assert.Equal("a.json", a.String("--annotations"));
        Assert.Equal([0.5, 1.0], a.Doubles("--anchor-ratios"));
    }

    [Theory]
    [InlineData("no MODEL", "missing MODEL", "train", "--annotations", "{A}")]
    [InlineData("unknown backbone", "unknown backbone 'ResNet9FPN'; choose from ResNet18FPN", "train", "m.pth",
        "--annotations", "{A}", "--backbone", "ResNet9FPN")]
    [InlineData("negative batch", "--batch must be positive, got -2", "train", "m.pth", "--annotations", "{A}",
        "--batch", "-2")]
    [InlineData("not a number", "--lr: expected a number, got 'fast'", "train", "m.pth", "--annotations", "{A}",
        "--lr", "fast")]
    [InlineData("missing annotations", "does not exist", "train", "m.pth", "--annotations", "/nonexistent/train.json")]
    [InlineData("required option", "--annotations is required", "train", "m.pth")]
    [InlineData("wrong extension", "has the wrong extension, expected .pth or .safetensors", "train", "model.onnx",
        "--annotations", "{A}")]
    [InlineData("annotations not json", "has the wrong extension, expected .json", "train", "m.pth",
        "--annotations", "{ODTK}")]
    [InlineData("typo", "did you mean --classes?", "train", "m.pth", "--annotations", "{A}", "--clases", "3")]
    [InlineData("jitter order", "--jitter: expected 0 < min <= max", "train", "m.pth", "--annotations", "{A}",
        "--jitter", "900", "600")]
    [InlineData("milestones order", "--milestones: expected increasing", "train", "m.pth", "--annotations", "{A}",
        "--milestones", "5", "3")]
    [InlineData("anchor ious", "anchor IoUs must satisfy", "train", "m.pth", "--annotations", "{A}",
        "--anchor-ious", "0.6", "0.5")]
    [InlineData("nms range", "NMS threshold must be in (0, 1]", "infer", "{ODTK}", "--images", "{DIR}", "--nms", "1.5")]
    [InlineData("images missing", "--images: /nonexistent/imgs does not exist; give a folder of images", "infer",
        "{ODTK}", "--images", "/nonexistent/imgs")]
    [InlineData("export size", "--size: 1000 must be a positive multiple of 128", "export", "{ODTK}", "out.onnx",
        "--size", "1000")]
    [InlineData("export ext", "expected .onnx or .plan or .engine", "export", "{ODTK}", "out.trt")]
    [InlineData("int8 needs data", "--int8 needs --calibration-images", "export", "{ODTK}", "out.onnx", "--int8")]
    [InlineData("bad master", "--master: expected address:port", "--master", "nowhere", "train", "m.pth",
        "--annotations", "{A}")]
    [InlineData("bad device", "--device: expected cpu or cuda", "infer", "{ODTK}", "--images", "{DIR}",
        "--device", "tpu")]
    [InlineData("unknown command", "unknown command 'fit'", "fit")]
    [InlineData("serve host", "--host: 'example.com' is not an IP address", "serve", "{ODTK}", "--host", "example.com")]
    [InlineData("serve port", "port must be 0..65535, got 70000", "serve", "{ODTK}", "--port", "70000")]
    [InlineData("serve batch", "--max-batch", "serve", "{ODTK}", "--max-batch", "0")]
    [InlineData("serve model", "MODEL", "serve", "{DIR}/none.pth")]
    [InlineData("serve nms", "NMS threshold must", "serve", "{ODTK}", "--nms", "2")]
    public void BadValuesGiveOneClearLineAndExitCode2(string _, string message, params string[] args)
    {
        var real = args.Select(a => a.Replace("{A}", Annotations).Replace("{ODTK}", Odtk).Replace("{DIR}", Dir))
            .ToArray();
        var (code, _, err) = Run(real);
        Assert.Equal(CommandLine.BadUsage, code);
        Assert.Contains(message, err);
        Assert.Single(err.TrimEnd().Split('\n'));
    }

    [Fact]
    public void ValidCommandsOfLaterIssuesSayNotYetSupported()
    {
        // --with-dali decodes on the GPU: on the CPU it is a usage error that says so
        var (code, _, err) = Run("train", Path.Combine(Dir, "m.pth"), "--annotations", Annotations, "--images", Dir,
            "--with-dali", "--device", "cpu");
        Assert.Equal(CommandLine.BadUsage, code);
        Assert.Contains("--with-dali", err);
        (code, _, err) = Run("infer", Odtk, "--images", Dir, "--output", Path.Combine(Dir, "d.json"),
            "--with-dali", "--device", "cpu");
        Assert.Equal(CommandLine.BadUsage, code);
        Assert.Contains("CUDA", err);
        (code, _, err) = Run("train", Path.Combine(Dir, "m.pth"), "--annotations", Annotations, "--images", Dir,
            "--augment-free", "--device", "cpu");
        Assert.Equal(CommandLine.NotYetSupported, code);
        Assert.Contains("not yet supported", err);
    }

    [Fact]
    public void ADamagedModelFileIsReportedByName()
    {
        var bad = Touch("broken.pth", "garbage");
        var (code, _, err) = Run("infer", bad, "--images", Dir);
        Assert.Equal(CommandLine.Failed, code);
        Assert.Contains(bad, err);
    }

    [Fact]
    public void HelpAndSummaryWork()
    {
        var (code, o, _) = Run("--help");
        Assert.Equal(0, code);
        Assert.Contains("train", o); Assert.Contains("export", o);
        (code, o, _) = Run("train", "--help");
        Assert.Equal(0, code);
        Assert.Contains("--regularization-l2", o);
        Assert.Contains("(default: the annotation file's category count)", o);
        (code, o, _) = Run("infer", "--help");
        Assert.Equal(0, code);
        Assert.Contains("(default: the model's, else 800)", o);
        (code, o, _) = Run("summary", "--backbone", "MobileNetV2FPN", "--classes", "3", "--size", "128", "256",
            "--device", "cpu");
        Assert.Equal(0, code);
        Assert.Contains("detections kept", o);
        Assert.Contains("P7 1x2", o);
        (code, o, _) = Run("summary", "--model", Odtk, "--size", "128", "128", "--device", "cpu");
        Assert.Equal(0, code);
        Assert.Contains("3 classes", o);
        Assert.Contains("input: resize 800, max size 1333", o); // ODTK stores none: the defaults
    }
}
