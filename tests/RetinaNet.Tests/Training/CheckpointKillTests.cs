using System.Diagnostics;
using RetinaNet.Checkpoints;
using RetinaNet.Data.Imaging;
using RetinaNet.Data.Synthetic;
using Xunit;

namespace RetinaNet.Tests.Training;

/// <summary>A training process killed at any moment — including while it writes a checkpoint — leaves a checkpoint
/// that loads: writes go to a temporary file that is renamed over the previous one.</summary>
[Collection("global torch RNG")]
public class CheckpointKillTests
{
    [Fact]
    public void KillingTrainingAtRandomMomentsNeverLeavesAnUnreadableCheckpoint()
    {
        var dir = Paths.TempDir();
        var (annotations, images) = ShapesOnDisk.Write(dir, 4, 128, seed: 2);
        var model = Path.Combine(dir, "m.pth");
        var cli = Path.Combine(AppContext.BaseDirectory, "retinanet.dll");
        var random = new Random(5);
        int killsAfterACheckpoint = 0;
        for (int round = 0; round < 4; round++)
        {
            var start = new ProcessStartInfo(Environment.ProcessPath!)
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            };
            foreach (var arg in new[] { "exec", cli, "train", model, "--annotations", annotations, "--images", images,
                         "--backbone", "ResNet18FPN", "--classes", "3", "--backbone-weights", "none", "--batch", "1",
                         "--jitter", "128", "128", "--max-size", "128", "--iters", "100000",
                         "--checkpoint-interval", "1", "--device", "cpu", "--workers", "1" })
                start.ArgumentList.Add(arg);
            using var process = Process.Start(start)!;
            process.StandardOutput.ReadToEndAsync();
            process.StandardError.ReadToEndAsync();
            // wait until this process has (re)written the checkpoint, then kill at a random moment of the next
            // interval, which lands inside a write some of the time (a write of this model takes a good part
            // of a second here)
            var previous = File.Exists(model) ? File.GetLastWriteTimeUtc(model) : DateTime.MinValue;
            var watch = Stopwatch.StartNew();
            while ((!File.Exists(model) || File.GetLastWriteTimeUtc(model) == previous)
                && watch.Elapsed < TimeSpan.FromSeconds(120) && !process.HasExited)
                Thread.Sleep(20);
            Assert.False(process.HasExited, "training exited early");
            Assert.True(File.GetLastWriteTimeUtc(model) != previous, "no checkpoint written within 120 s");
            killsAfterACheckpoint++;
            Thread.Sleep(random.Next(0, 1500));
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            var loaded = Checkpoint.Load(model); // must not throw: the last complete checkpoint is there
            Assert.NotNull(loaded.State);
            loaded.Model.Dispose();
        }
        Assert.Equal(4, killsAfterACheckpoint);
    }
}
