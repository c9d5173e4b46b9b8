using RetinaNet.Distributed;
using TorchSharp;
using static TorchSharp.torch;
using static RetinaNet.Cli.Validation;

namespace RetinaNet.Cli;

/// <summary>Where this process runs a train or infer job: alone (<see cref="Group"/> null), or as one rank of
/// <see cref="Ranks"/>, <see cref="LocalRanks"/> of them on this machine.</summary>
sealed record Placement(Device Device, ProcessGroup? Group, int Ranks, int LocalRanks)
{
    public bool IsMaster => Group?.IsMaster ?? true;

    /// <summary>This rank's share of <c>--batch</c> (over all GPUs, as ODTK; default 2 per GPU).</summary>
    public int RankBatch(ParsedArgs a) => GlobalBatch(a, Ranks) / Ranks;

    /// <summary>ODTK's default --batch: 2 images per GPU.</summary>
    public static int DefaultBatch(int gpus) => 2 * Math.Max(1, gpus);

    public static int GlobalBatch(ParsedArgs a, int ranks)
    {
        int batch = a.Has("--batch") ? Positive(a, "--batch") : DefaultBatch(ranks);
        BatchDividesGpus(batch, ranks);
        return batch;
    }

    /// <summary>--workers, or with several ranks on this machine their share of its cores.</summary>
    public int Workers(ParsedArgs a) =>
        a.Int("--workers") is > 0 and int n ? n : LocalRanks > 1 ? Math.Clamp(Environment.ProcessorCount / LocalRanks - 1, 1, 12) : 0;

    /// <summary>Only rank 0 prints.</summary>
    public TextWriter Output(TextWriter stdout) => IsMaster ? stdout : TextWriter.Null;
}

/// <summary>How train and infer spread over GPUs. Started by a launcher (torchrun, a SLURM <c>srun</c> wrapper, our
/// own launcher: RANK/WORLD_SIZE set), the process joins the job as its rank on the GPU LOCAL_RANK. Otherwise, with
/// several usable GPUs it starts one process per GPU (ODTK's behaviour; <c>--gpus</c> limits them) and only waits
/// for them; with one, it runs alone with no collectives at all.</summary>
static class MultiProcess
{
    /// <summary>On a GPU without NVRTC our kernels (NMS, top-k, focal loss, frozen BN + ReLU) fall back to libtorch's
    /// ops: the same results, slower. Say so once, with the reason.</summary>
    static void NoteMissingKernels(Device device, TextWriter stderr)
    {
        if (device.type == DeviceType.CUDA && !Native.CudaKernels.Available)
            stderr.WriteLine($"note: our CUDA kernels are unavailable ({Native.CudaKernels.MissingReason}); libtorch's operations run instead (same results, slower)");
    }

    public static int Run(ParsedArgs a, CommandContext context, Func<Placement, int> job)
    {
        var timeout = TimeSpan.FromSeconds(Positive(a, "--dist-timeout"));
        var requested = DeviceChoice.Resolve(a.String("--device"));
        RankAssignment? me;
        try { me = LaunchEnvironment.Read(LaunchEnvironment.Current(), context.Master); }
        catch (DistributedSetupException e) { throw new UsageException(e.Message); }
        var provider = context.Services.Collectives();
        if (me is null)
        {
            int ranks = LocalRanks(a, context, requested, provider);
            if (ranks > 1 && context.Services.Relaunch is SelfCommand self)
            {
                Placement.GlobalBatch(a, ranks);
                var master = context.Master ?? MasterEndpoint.FreeLocalPort();
                context.Stdout.WriteLine($"Starting {ranks} processes, one per GPU (rank 0 at {master})");
                return LocalLauncher.Run(self, context.Arguments, ranks, master, new WatchdogOptions(timeout, null).Grace + TimeSpan.FromSeconds(5),
                    context.Stderr, $"retinanet {a.Command}");
            }
            NoteMissingKernels(requested, context.Stderr);
            return job(new Placement(requested, null, 1, 1));
        }
        var device = DeviceChoice.ForRank(a.String("--device"), me.LocalRank, context.Gpus);
        if (me.Rank == 0) NoteMissingKernels(device, context.Stderr);
        if (me.WorldSize == 1) return job(new Placement(device, null, 1, 1));
        if (device.type == DeviceType.CUDA) Native.CudaDevice.SetCurrent(device.index);
        using var group = ProcessGroup.Start(me, provider, device, new WatchdogOptions(timeout, context.Services.HardExit is { } exit
            ? (code, line) => exit(code, $"retinanet {a.Command}: rank {me.Rank}: {line}") : null));
        try
        {
            int code = job(new Placement(device, group, me.WorldSize, me.LocalWorldSize ?? 1));
            if (code != CommandLine.Ok) group.ReportFailure($"it ended with exit code {code}");
            else group.Finish();
            return code;
        }
        catch (Exception e) when (e is not (DistributedFailureException or DistributedStoppedException))
        {
            if (group.EndedBy(e) is Exception ended) throw ended; // only a consequence: the job had already ended
            group.ReportFailure(e.Message.Split('\n')[0]); // native errors carry a stack trace after the first line
            throw;
        }
    }

    /// <summary>How many processes to start here: one per visible GPU (at most <c>--gpus</c>), or one where the
    /// backend cannot serve the device (NCCL and the CPU).</summary>
    static int LocalRanks(ParsedArgs a, CommandContext context, Device device, ICollectivesProvider provider)
    {
        int? wanted = a.OptionalInt("--gpus");
        if (wanted is < 1) throw new UsageException($"--gpus must be positive, got {wanted}");
        if (wanted == 1) return 1;
        if (provider.Unsupported(device) is string why)
        {
            if (wanted > 1) throw new UsageException($"--gpus {wanted}: {why}");
            if (device.type == DeviceType.CUDA && context.Gpus > 1) context.Stderr.WriteLine($"warning: using one of {context.Gpus} GPUs: {why}");
            return 1;
        }
        if (wanted > context.Gpus) throw new UsageException($"--gpus {wanted}: only {context.Gpus} GPU{(context.Gpus == 1 ? " is" : "s are")} visible");
        return Math.Max(1, wanted ?? context.Gpus);
    }
}
