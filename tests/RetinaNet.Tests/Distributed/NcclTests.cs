using RetinaNet.Cli;
using RetinaNet.Distributed;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Distributed;

/// <summary>A fact that runs where libnccl.so.2 loads, and says so when skipped.</summary>
public sealed class NcclFactAttribute : FactAttribute
{
    public NcclFactAttribute(bool needsGpu = false)
    {
        if (!NcclLibrary.Present)
            Skip = $"skipped: {NcclLibrary.Name} is not installed on this machine (the GPU machine has it)";
        else if (needsGpu && !cuda.is_available())
            Skip = "skipped: no CUDA GPU on this machine (runs on the GPU machine)";
    }
}

public class NcclTests
{
    [NcclFact]
    public void EveryNcclEntryPointWeCallIsExported()
    {
        var missing = NcclLibrary.MissingSymbols();
        Assert.NotNull(missing);
        Assert.True(missing.Count == 0, $"{NcclLibrary.Name} lacks {string.Join(", ", missing)}");
        Assert.Null(NcclLibrary.MissingReason);
        Assert.True(NcclLibrary.Version >= NcclLibrary.MinimumVersion,
            $"NCCL {NcclLibrary.Version} is older than 2.10");
    }

    [NcclFact(needsGpu: true)]
    public void OneRankCollectivesOnTheGpuThroughNccl()
    {
        var device = new Device(DeviceType.CUDA, 0);
        var me = new RankAssignment(0, 1, 0, 1, MasterEndpoint.FreeLocalPort(), "test");
        using var group = ProcessGroup.Start(me, new NcclProvider(), device,
            new WatchdogOptions(TimeSpan.FromSeconds(30), null));
        using var t = tensor(new float[] { 1, 2, 3 }).to(device);
        group.AllReduce(t, ReduceOp.Sum);
        using var b = tensor(new float[] { 4, 5 }).to(device).to(ScalarType.BFloat16);
        group.Broadcast(b);
        using var g = group.AllGather(tensor(new long[] { 7, 8 }).to(device));
        Assert.Equal([1f, 2f, 3f], t.cpu().data<float>().ToArray());
        Assert.Equal([4f, 5f], b.to(ScalarType.Float32).cpu().data<float>().ToArray());
        Assert.Equal([1L, 2L], g.shape);
        Assert.Equal([7L, 8L], g.cpu().data<long>().ToArray());
        group.Finish();
    }

    [Fact]
    public void NcclServesOnlyGpus() =>
        Assert.Contains("needs CUDA devices", new NcclProvider().Unsupported(CPU));

    [Theory]
    [InlineData("--gpus", "2", "--gpus 2: NCCL moves data between GPUs")]
    [InlineData("--gpus", "0", "--gpus must be positive")]
    [InlineData("--dist-timeout", "0", "--dist-timeout must be positive")]
    public void MultiGpuOptionsAreChecked(string option, string value, string expected)
    {
        var dir = Paths.TempDir();
        var (annotations, images) = ShapesOnDisk.Write(dir, 1, 128, seed: 1);
        var stderr = new StringWriter();
        int code = CommandLine.Run(["train", Path.Combine(dir, "m.pth"), "--annotations", annotations,
            "--images", images, "--device", "cpu", option, value], TextWriter.Null, stderr);
        Assert.Equal(CommandLine.BadUsage, code);
        Assert.Contains(expected, stderr.ToString());
    }
}
