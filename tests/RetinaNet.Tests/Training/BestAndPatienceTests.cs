using System.Globalization;
using RetinaNet.Checkpoints;
using RetinaNet.Cli;
using Xunit;

namespace RetinaNet.Tests.Training;

/// <summary>Training results people look at: the best model by validation mAP, stopping when mAP stops rising, and
/// results.csv / results.png in the log folder.</summary>
public class BestAndPatienceTests
{
    [Fact]
    public void KeepsTheBestModelStopsWithoutProgressAndWritesResults()
    {
        var dir = Paths.TempDir();
        var (annotations, images) = ShapesOnDisk.Write(dir, 4, 96, seed: 5, "train.json");
        string model = Path.Combine(dir, "m.pth"), logs = Path.Combine(dir, "logs");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        // a learning rate of ~0: validation's mAP cannot rise after the first, so with patience 2 the run ends after
        // the validations at iterations 5 (the best), 10 and 15, well before 40
        int code = CommandLine.Run(["train", model, "--annotations", annotations, "--images", images,
            "--backbone", "ResNet18FPN", "--backbone-weights", "none", "--iters", "40", "--batch", "2",
            "--resize", "96", "--max-size", "96", "--lr", "1e-12", "--warmup", "0", "--milestones", "30",
            "--val-annotations", annotations, "--val-iters", "5", "--patience", "2",
            "--logdir", logs, "--log-interval", "0", "--device", "cpu", "--seed", "1"], stdout, stderr);
        string output = stdout.ToString();
        Assert.True(code == 0, stderr.ToString() + output);
        Assert.Contains("Stopping early: no better mAP in 2 validations (best ", output);
        Assert.Contains("at iteration 5)", output);
        Assert.Contains("Stopped early at iteration 15", output);
        Assert.Contains($"at iteration 5: {Path.Combine(dir, "m.best.pth")}", output);

        var best = Checkpoint.Load(Path.Combine(dir, "m.best.pth"));
        using (best.Model) Assert.Equal(5, best.State!.Iteration);
        var last = Checkpoint.Load(model);
        using (last.Model) Assert.Equal(15, last.State!.Iteration);

        var lines = File.ReadAllLines(Path.Combine(logs, "results.csv"));
        Assert.Equal("iteration,focal_loss,box_loss,images_per_s,lr,mAP,mAP50", lines[0]);
        var rows = lines[1..].Select(l => l.Split(',')).ToList();
        Assert.Equal(Enumerable.Range(1, 15).Select(i => i.ToString(CultureInfo.InvariantCulture)),
            rows.Select(r => r[0]));
        // mAP at 5, 10, 15
        Assert.Equal([4, 9, 14], rows.Select((r, i) => (r, i)).Where(p => p.r[5] != "").Select(p => p.i));
        // the CSV's losses are the ones the log printed (3 decimals there)
        var printed = output.Split('\n').Where(l => l.Contains("focal loss:")).Select(l =>
            double.Parse(l.Split("focal loss: ")[1].Split(',')[0], CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(15, printed.Count);
        for (int i = 0; i < 15; i++)
            Assertions.Close(printed[i], double.Parse(rows[i][1], CultureInfo.InvariantCulture), 5.1e-4,
                $"row {i + 1}");

        var png = File.ReadAllBytes(Path.Combine(logs, "results.png"));
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png[..4]);
    }

    [Fact]
    public void PatienceWithoutValidationIsAUsageError()
    {
        var dir = Paths.TempDir();
        var (annotations, images) = ShapesOnDisk.Write(dir, 2, 64, seed: 5, "train.json");
        var stderr = new StringWriter();
        int code = CommandLine.Run(["train", Path.Combine(dir, "m.pth"), "--annotations", annotations,
            "--images", images, "--patience", "3", "--device", "cpu"], TextWriter.Null, stderr);
        Assert.Equal(2, code);
        Assert.Contains("--patience needs --val-annotations", stderr.ToString());
    }
}
