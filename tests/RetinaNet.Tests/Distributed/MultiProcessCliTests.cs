using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using RetinaNet.Distributed;
using RetinaNet.Checkpoints;
using RetinaNet.Cli;
using RetinaNet.Data;
using RetinaNet.Data.Coco;
using RetinaNet.Data.Imaging;
using RetinaNet.Model;
using Xunit;
using static RetinaNet.Native.Scalars;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Distributed;

/// <summary>`retinanet train` and `infer` as multi-process jobs on the CPU: the test host pretends to have GPUs and
/// uses the collectives' CPU double, so the launcher, rendezvous, sharding, gradient averaging, gathering and failure
/// propagation run for real, each rank a process.</summary>
[Collection("global torch RNG")]
public class MultiProcessCliTests
{
    static readonly TimeSpan Limit = TimeSpan.FromSeconds(150);
    static readonly Dictionary<string, string> TwoGpus = new() { [TestHost.GpusVariable] = "2" };
    static readonly string[] Small = ["--resize", "128", "--max-size", "128", "--device", "cpu", "--workers", "1"];
    static readonly string[] Tiny = ["--jitter", "128", "128", .. Small];

    /// <summary>A 128×128 image that is its own mirror image, with boxes symmetric about the vertical centre line,
    /// so a horizontal flip (random in training) changes nothing and the runs compared below see identical inputs.
    /// </summary>
    static RgbImage MirrorImage(int seed, IEnumerable<(int X1, int Y1, int X2, int Y2, byte Shade)> boxes)
    {
        const int size = 128;
        var random = new Random(seed);
        var pixels = new byte[size * size * 3];
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size / 2; x++)
                for (int c = 0; c < 3; c++)
                    pixels[3 * (y * size + x) + c] = pixels[3 * (y * size + size - 1 - x) + c] =
                        (byte)random.Next(40, 120);
        foreach (var (x1, y1, x2, y2, shade) in boxes)
            for (int y = y1; y < y2; y++)
                for (int x = x1; x < x2; x++)
                    pixels[3 * (y * size + x)] = shade;
        return new RgbImage(size, size, pixels);
    }

    static string WriteCoco(string path,
        params (long Id, string File, (int X1, int Y1, int X2, int Y2, int Class)[] Boxes)[] images)
    {
        var annotations = images.SelectMany(i => i.Boxes.Select(b => (i.Id, b))).Select((x, k) =>
            new CocoAnnotation(k + 1, x.Id, x.b.Class, x.b.X1, x.b.Y1, x.b.X2 - x.b.X1, x.b.Y2 - x.b.Y1,
                (x.b.X2 - x.b.X1) * (x.b.Y2 - x.b.Y1), false)).ToList();
        new CocoFile(path, images.Select(i => new CocoImageInfo(i.Id, i.File, 128, 128)).ToList(), annotations,
            [new CocoCategory(1, "a", "x"), new CocoCategory(2, "b", "x"), new CocoCategory(3, "c", "x")]).Save(path);
        return path;
    }

    [Fact]
    public void TwoRanksTrainAsTheMeanOfEachImageAlone()
    {
        var dir = Paths.TempDir();
        (int, int, int, int, int)[] boxesA = [(24, 30, 104, 90, 1)],
            boxesB = [(44, 10, 84, 50, 2), (34, 70, 94, 118, 3)];
        ImageEncoder.SavePng(MirrorImage(1, boxesA.Select(b => (b.Item1, b.Item2, b.Item3, b.Item4, (byte)200))),
            Path.Combine(dir, "a.png"));
        ImageEncoder.SavePng(MirrorImage(2, boxesB.Select(b => (b.Item1, b.Item2, b.Item3, b.Item4, (byte)230))),
            Path.Combine(dir, "b.png"));
        var a = WriteCoco(Path.Combine(dir, "a.json"), (1, "a.png", boxesA));
        var b = WriteCoco(Path.Combine(dir, "b.json"), (2, "b.png", boxesB));
        var ab = WriteCoco(Path.Combine(dir, "ab.json"), (1, "a.png", boxesA), (2, "b.png", boxesB));
        // one starting point for all three runs (resumed from MODEL): a small detector with calibrated batch norm
        var start = Path.Combine(dir, "start.pth");
        manual_seed(3);
        using (var m = new RetinaNetModel(new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 3 }))
        {
            m.Initialize(3);
            m.CalibrateBatchNorm(randn(4, 3, 128, 128));
            Checkpoint.Save(start, m);
        }
        foreach (var name in new[] { "both.pth", "a.pth", "b.pth" }) File.Copy(start, Path.Combine(dir, name));
        string[] common = ["--images", dir, "--iters", "1", "--lr", "0.01", "--warmup", "0",
            "--checkpoint-interval", "1000", "--augment-brightness", "0", "--augment-contrast", "0",
            "--augment-saturation", "0", "--augment-hue", "0", .. Tiny];

        var both = RankProcesses.Run(
            ["train", Path.Combine(dir, "both.pth"), "--annotations", ab, "--batch", "2", .. common], TwoGpus, Limit);
        Assert.True(both.ExitCode == 0, both.Stderr);
        Assert.Contains("Starting 2 processes", both.Stdout);
        Assert.Single(both.Stdout.Split('\n'), l => l.StartsWith("Training ResNet18FPN")); // rank 0 alone speaks
        Assert.Equal(CommandLine.Ok, CommandLine.Run(["train", Path.Combine(dir, "a.pth"), "--annotations", a,
            "--batch", "1", .. common], TextWriter.Null, TextWriter.Null));
        Assert.Equal(CommandLine.Ok, CommandLine.Run(["train", Path.Combine(dir, "b.pth"), "--annotations", b,
            "--batch", "1", .. common], TextWriter.Null, TextWriter.Null));

        // one SGD step is linear in the gradient: averaging the ranks' gradients must give the mean of the two
        // single-image runs' weights (each rank computed exactly one of those runs' losses)
        using var scope = NewDisposeScope();
        var (w2, wa, wb) = (Weights(dir, "both.pth"), Weights(dir, "a.pth"), Weights(dir, "b.pth"));
        double spread = 0, error = 0;
        foreach (var key in wa.Keys)
        {
            spread = Math.Max(spread, (wa[key] - wb[key]).abs().max().item<float>());
            error = Math.Max(error, (w2[key] - wa[key].Plus(wb[key]) / Of(2)).abs().max().item<float>());
        }
        Assert.True(spread > 1e-4, $"the two images moved the weights alike ({spread:E2}): the test would not tell");
        Assert.True(error < 0.01 * spread, $"two-rank weights differ from the mean of the single-image runs " +
            $"by {error:E2} (the runs differ by {spread:E2})");
    }

    static Dictionary<string, Tensor> Weights(string dir, string file)
    {
        var model = Checkpoint.Load(Path.Combine(dir, file)).Model;
        return StateDict.Of(model).Where(kv => kv.Value.is_floating_point())
            .ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
    }

    [Fact]
    public void TwoRanksUnderALauncherInferWhatOneProcessInfers()
    {
        var dir = Paths.TempDir();
        // 5 images: rank 1's shard pads with a repeat
        var (annotations, images) = ShapesOnDisk.Write(dir, 5, 128, seed: 4, "gt.json");
        var model = Path.Combine(dir, "m.pth");
        manual_seed(5);
        using (var m = new RetinaNetModel(new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 3 }))
        {
            m.Initialize(5);
            Checkpoint.Save(model, m);
        }
        string[] common = ["infer", model, "--annotations", annotations, "--images", images, "--score-threshold", "0",
            "--detections", "10", .. Small];
        string single = Path.Combine(dir, "single.json"), shared = Path.Combine(dir, "two.json");
        Assert.Equal(CommandLine.Ok,
            CommandLine.Run([.. common, "--output", single, "--batch", "1"], TextWriter.Null, TextWriter.Null));
        var ranks = RankProcesses.RunAsRanks(2, [.. common, "--output", shared, "--batch", "2"], Limit);
        Assert.All(ranks, r => Assert.True(r.ExitCode == 0, r.Stderr));
        Assert.Contains("Running inference on 5 images", ranks[0].Stdout);
        Assert.Equal("", ranks[1].Stdout.Trim()); // only rank 0 prints and writes

        var expected = Detections(single);
        var actual = Detections(shared);
        Assert.Equal(50, expected.Count); // 10 per image
        Assert.Equal(expected.Count, actual.Count); // the repeat that padded rank 1's shard is not counted twice
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal((expected[i].Image, expected[i].Category), (actual[i].Image, actual[i].Category));
            for (int k = 0; k < 5; k++) Assert.Equal(expected[i].Numbers[k], actual[i].Numbers[k], 4);
        }
    }

    static List<(long Image, long Category, double[] Numbers)> Detections(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        return doc.RootElement.GetProperty("annotations").EnumerateArray()
            .Select(d => (d.GetProperty("image_id").GetInt64(), d.GetProperty("category_id").GetInt64(),
                (double[])[.. d.GetProperty("bbox").EnumerateArray().Select(v => v.GetDouble()),
                    d.GetProperty("score").GetDouble()])).ToList();
    }

    [DllImport("libc.so.6", EntryPoint = "kill")]
    static extern int Signal(int pid, int signal);

    [SigintFact]
    public async Task CtrlCOnRank0SavesAndEndsTheJobWithoutError()
    {
        var dir = Paths.TempDir();
        var (annotations, images) = ShapesOnDisk.Write(dir, 4, 128, seed: 7);
        var model = Path.Combine(dir, "m.pth");
        var master = MasterEndpoint.FreeLocalPort();
        string[] args = ["train", model, "--annotations", annotations, "--images", images,
            "--backbone", "ResNet18FPN", "--classes", "3",
            "--backbone-weights", "none", "--batch", "2", "--iters", "1000", "--log-interval", "1", .. Tiny];
        var ranks = Enumerable.Range(0, 2).Select(r => RankProcesses.Start(args, new Dictionary<string, string>
        {
            ["RANK"] = $"{r}", ["WORLD_SIZE"] = "2", ["LOCAL_RANK"] = $"{r}", ["MASTER_ADDR"] = master.Host,
            ["MASTER_PORT"] = $"{master.Port}",
        })).ToArray();
        // whatever happens below, nothing outlives the limit (a read of rank 0's output would
        // otherwise wait for its end)
        using var guard = new Timer(_ =>
        {
            foreach (var p in ranks) try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        }, null, Limit, Timeout.InfiniteTimeSpan);
        try
        {
            var stderr = ranks.Select(p => p.StandardError.ReadToEndAsync()).ToArray();
            var rank0 = new StringBuilder();
            string? line;
            while ((line = ranks[0].StandardOutput.ReadLine()) is not null
                && !Regex.IsMatch(line, @"^\[\s*([2-9]|\d\d+)/1000\]")) rank0.AppendLine(line);
            Assert.NotNull(line); // rank 0 trains and logs
            Signal(ranks[0].Id, 2); // SIGINT: what Ctrl-C in the terminal delivers
            rank0.Append(ranks[0].StandardOutput.ReadToEnd());
            foreach (var p in ranks) Assert.True(p.WaitForExit(TimeSpan.FromSeconds(60)), "a rank did not stop");
            var errors = await Task.WhenAll(stderr);
            Assert.True(ranks[0].ExitCode == 0, errors[0]);
            Assert.True(ranks[1].ExitCode == 0, errors[1]);
            Assert.Matches(@"Stopped at iteration \d+; checkpoint saved", rank0.ToString());
            Assert.Contains("retinanet train: stopped by rank 0: rank 0 stopped at iteration", errors[1]);
            var state = Checkpoint.Load(model).State!;
            Assert.InRange(state.Iteration, 2, 999);
        }
        finally
        {
            foreach (var p in ranks) { if (!p.HasExited) p.Kill(entireProcessTree: true); p.Dispose(); }
        }
    }

    /// <summary>A rank that raises, is killed, hangs in its own work, or freezes entirely (no heartbeat either) —
    /// and rank 0 itself killed: every process ends, non-zero, within bounded time, saying which rank failed.
    /// --dist-timeout: short where the timeout is what detects the fault (hang, freeze); long where the fault announces
    /// itself, so that a rank slowed by a loaded machine (a 2-core CI box running other tests) is not taken for a hung
    /// one first (seen once in CI: the raise case).</summary>
    [Theory]
    [InlineData("1:raise:3", "rank 1 failed: injected fault: rank 1 could not read its data", 60)]
    [InlineData("1:kill:3", "rank 1 failed: it exited without finishing (killed, crashed", 60)]
    [InlineData("1:hang:2", "rank 1 failed: it kept the other ranks waiting at collective #", 4)]
    [InlineData("1:freeze:3", "rank 1 failed: no heartbeat for", 4)]
    [InlineData("0:kill:3", "rank 0 failed: its connection closed: rank 0 exited or crashed", 60)]
    public void AFailingRankStopsTheWholeJobNamingIt(string fault, string expected, int timeoutSeconds)
    {
        var dir = Paths.TempDir();
        var (annotations, images) = ShapesOnDisk.Write(dir, 4, 128, seed: 6);
        var result = RankProcesses.Run(["train", Path.Combine(dir, "m.pth"), "--annotations", annotations,
            "--images", images, "--backbone", "ResNet18FPN", "--classes", "3", "--backbone-weights", "none",
            "--batch", "2", "--iters", "1000", "--dist-timeout", $"{timeoutSeconds}", .. Tiny],
            new Dictionary<string, string>(TwoGpus) { [TcpCollectivesProvider.FaultVariable] = fault }, Limit);
        Assert.True(result.ExitCode == 1 && result.Stderr.Contains(expected),
            $"exit code {result.ExitCode}, expected '{expected}' in:\n{result.Stderr}");
        Assert.Contains("retinanet train: error: the job failed: rank", result.Stderr); // the launcher's last word
        Assert.DoesNotContain("[1000/1000]", result.Stdout);
    }
}
