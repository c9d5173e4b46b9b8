using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Distributed;

/// <summary>A placement the user asked for that cannot be: too many GPUs, a batch that does not divide among them, a
/// rank without its GPU. The command line reports it as a usage error.</summary>
public sealed class PlacementException(string message) : ArgumentException(message);

/// <summary>Where a train or infer job should run, as asked: the device, at most <see cref="Gpus"/> GPUs (null: every
/// visible one), the collectives' timeout, the global batch (null: ODTK's 2 images a GPU) and loader workers (0: the
/// default, or each local rank's share of the cores).</summary>
public sealed record LaunchOptions(Device Device, TimeSpan Timeout)
{
    public int? Gpus { get; init; }
    public int? Batch { get; init; }
    public int Workers { get; init; }

    /// <summary>ODTK's default batch: 2 images per GPU.</summary>
    public static int DefaultBatch(int gpus) => 2 * Math.Max(1, gpus);

    /// <summary>The batch over all ranks; one that does not divide among them is a
    /// <see cref="PlacementException"/>.</summary>
    public int GlobalBatch(int ranks)
    {
        int batch = Batch ?? DefaultBatch(ranks);
        if (ranks > 1 && batch % ranks != 0)
            throw new PlacementException(
                $"--batch {batch} is not divisible by the {ranks} GPUs in use; use a multiple of {ranks}");
        return batch;
    }
}

/// <summary>What launching needs from around it: the GPUs this process sees, the collectives backend, how to start
/// this program again as a rank (null: never), how a failed rank ends itself (null: by exception), the master
/// endpoint given, the arguments a rank starts with, the job's name in messages, and where lines go.</summary>
public sealed record LaunchContext(int Gpus, Func<ICollectivesProvider> Collectives, SelfCommand? Relaunch,
    Action<int, string>? HardExit, MasterEndpoint? Master, IReadOnlyList<string> Arguments, string JobName,
    TextWriter Stdout, TextWriter Stderr);

/// <summary>Where this process runs a job: alone (<see cref="Group"/> null), or as one rank of <see cref="Ranks"/>,
/// <see cref="LocalRanks"/> of them on this machine, with its share of the batch and of the loader workers.</summary>
public sealed record Placement(Device Device, ProcessGroup? Group, int Ranks, int LocalRanks, int RankBatch,
    int Workers)
{
    public bool IsMaster => Group?.IsMaster ?? true;

    /// <summary>Only rank 0 prints.</summary>
    public TextWriter Output(TextWriter stdout) => IsMaster ? stdout : TextWriter.Null;

    /// <summary>This process alone on <paramref name="device"/>.</summary>
    public static Placement Alone(Device device, int batch, int workers) => new(device, null, 1, 1, batch, workers);
}

/// <summary>How train and infer spread over GPUs. Started by a launcher (torchrun, a SLURM <c>srun</c> wrapper, our
/// own launcher: RANK/WORLD_SIZE set), the process joins the job as its rank on the GPU LOCAL_RANK. Otherwise, with
/// several usable GPUs it starts one process per GPU (ODTK's behaviour; <see cref="LaunchOptions.Gpus"/> limits them)
/// and only waits for them; with one, it runs alone with no collectives at all.</summary>
public static class JobLauncher
{
    public static int Run(LaunchOptions o, LaunchContext context, Func<Placement, int> job)
    {
        RankAssignment? me;
        try { me = LaunchEnvironment.Read(LaunchEnvironment.Current(), context.Master); }
        catch (DistributedSetupException e) { throw new PlacementException(e.Message); }
        var provider = context.Collectives();
        if (me is null)
        {
            int ranks = LocalRanks(o, context, provider);
            if (ranks > 1 && context.Relaunch is SelfCommand self)
            {
                o.GlobalBatch(ranks); // checked before any process starts
                var master = context.Master ?? MasterEndpoint.FreeLocalPort();
                context.Stdout.WriteLine($"Starting {ranks} processes, one per GPU (rank 0 at {master})");
                return LocalLauncher.Run(self, context.Arguments, ranks, master,
                    new WatchdogOptions(o.Timeout, null).Grace + TimeSpan.FromSeconds(5),
                    context.Stderr, context.JobName);
            }
            NoteMissingKernels(o.Device, context.Stderr);
            return job(Placement.Alone(o.Device, o.GlobalBatch(1), o.Workers));
        }
        var device = RankDevice(o.Device, me.LocalRank, context.Gpus);
        if (me.Rank == 0) NoteMissingKernels(device, context.Stderr);
        int localRanks = me.LocalWorldSize ?? 1;
        var placement = new Placement(device, null, me.WorldSize, localRanks,
            o.GlobalBatch(me.WorldSize) / me.WorldSize,
            o.Workers > 0 ? o.Workers
                : localRanks > 1 ? Math.Clamp(Environment.ProcessorCount / localRanks - 1, 1, 12) : 0);
        if (me.WorldSize == 1) return job(placement);
        if (device.type == DeviceType.CUDA) Native.CudaDevice.SetCurrent(device.index);
        using var group = ProcessGroup.Start(me, provider, device, new WatchdogOptions(o.Timeout,
            context.HardExit is { } exit
                ? (code, line) => exit(code, $"{context.JobName}: rank {me.Rank}: {line}") : null));
        try
        {
            int code = job(placement with { Group = group });
            if (code != 0) group.ReportFailure($"it ended with exit code {code}");
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

    /// <summary>A rank's device: the CPU when asked, else the GPU LOCAL_RANK (GPU 0 when the rank sees only one, as
    /// under SLURM's per-task GPU binding).</summary>
    public static Device RankDevice(Device requested, int? localRank, int visibleGpus)
    {
        if (requested.type != DeviceType.CUDA) return requested;
        if (visibleGpus == 1) return new Device(DeviceType.CUDA, 0);
        if (localRank is not int index)
            throw new PlacementException($"LOCAL_RANK is not set and {visibleGpus} GPUs are visible: " +
                "set LOCAL_RANK to this rank's GPU on its machine, or give each rank one GPU (CUDA_VISIBLE_DEVICES)");
        if (index >= visibleGpus)
            throw new PlacementException(
                $"LOCAL_RANK={index}, but only {visibleGpus} GPUs are visible on this machine");
        return new Device(DeviceType.CUDA, index);
    }

    /// <summary>On a GPU without NVRTC our kernels (NMS, top-k, focal loss, frozen BN + ReLU) fall back to libtorch's
    /// ops: the same results, slower. Said once, with the reason.</summary>
    static void NoteMissingKernels(Device device, TextWriter stderr)
    {
        if (device.type == DeviceType.CUDA && !Native.CudaKernels.Available)
            stderr.WriteLine($"note: our CUDA kernels are unavailable ({Native.CudaKernels.MissingReason}); " +
                "libtorch's operations run instead (same results, slower)");
    }

    /// <summary>How many processes to start here: one per visible GPU (at most <see cref="LaunchOptions.Gpus"/>), or
    /// one where the backend cannot serve the device (NCCL and the CPU).</summary>
    static int LocalRanks(LaunchOptions o, LaunchContext context, ICollectivesProvider provider)
    {
        int? wanted = o.Gpus;
        if (wanted is < 1) throw new PlacementException($"--gpus must be positive, got {wanted}");
        if (wanted == 1) return 1;
        if (provider.Unsupported(o.Device) is string why)
        {
            if (wanted > 1) throw new PlacementException($"--gpus {wanted}: {why}");
            if (o.Device.type == DeviceType.CUDA && context.Gpus > 1)
                context.Stderr.WriteLine($"warning: using one of {context.Gpus} GPUs: {why}");
            return 1;
        }
        if (wanted > context.Gpus)
            throw new PlacementException(
                $"--gpus {wanted}: only {context.Gpus} GPU{(context.Gpus == 1 ? " is" : "s are")} visible");
        return Math.Max(1, wanted ?? context.Gpus);
    }
}
