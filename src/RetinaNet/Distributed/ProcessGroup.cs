using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Distributed;

/// <summary>This process as one rank of a multi-process job (one process per GPU, on one or many machines): the
/// collectives that training and inference use, guarded by the <see cref="Watchdog"/> so that a failure anywhere
/// stops every rank with a message naming the failed one. A job of one process has no group at all (callers pass
/// null): the single-GPU path runs no collectives.</summary>
public sealed class ProcessGroup : IDisposable
{
    static readonly TimeSpan VerdictWait = TimeSpan.FromSeconds(2);
    readonly Watchdog watchdog;
    readonly ProgressCounters counters;
    ICollectives? collectives;
    bool finished;

    public int Rank { get; }
    public int WorldSize { get; }
    public bool IsMaster => Rank == 0;
    public Device Device { get; }
    public string Backend { get; }

    ProcessGroup(RankAssignment me, Device device, string backend, Watchdog watchdog, ProgressCounters counters)
    {
        (Rank, WorldSize, Device, Backend, this.watchdog, this.counters) = (me.Rank, me.WorldSize, device, backend,
            watchdog, counters);
        watchdog.AbortBackend = () => collectives?.Abort();
        watchdog.BackendError = () => collectives?.AsyncError();
    }

    /// <summary>Rendezvous with the other ranks, start the watchdog, connect the backend. Throws
    /// <see cref="DistributedSetupException"/> when the job cannot start (naming what to fix).</summary>
    public static ProcessGroup Start(RankAssignment me, ICollectivesProvider provider, Device device,
        WatchdogOptions options)
    {
        if (provider.Unsupported(device) is string why) throw new DistributedSetupException(why);
        var counters = new ProgressCounters();
        ProcessGroup group;
        if (me.IsMaster)
        {
            var (peers, id) = Rendezvous.Host(me, provider, options.Join);
            group = new ProcessGroup(me, device, provider.Name, new MasterWatchdog(peers, counters, options), counters);
            group.Connect(provider, id);
        }
        else
        {
            var (link, backend, id) = Rendezvous.Join(me, options.Join);
            if (backend != provider.Name)
            {
                link.Dispose();
                throw new DistributedSetupException($"rank 0 uses the {backend} backend, rank {me.Rank} "
                    + $"{provider.Name}: run the same retinanet build everywhere");
            }
            group = new ProcessGroup(me, device, backend, new WorkerWatchdog(me.Rank, link, counters, options),
                counters);
            group.Connect(provider, id);
        }
        return group;
    }

    void Connect(ICollectivesProvider provider, byte[] id)
    {
        try
        {
            // the watchdog already runs: a rank that dies while the others wait in the backend's setup is noticed
            collectives = provider.Connect(id, Rank, WorldSize, Device);
        }
        catch (Exception e)
        {
            var ended = watchdog.EndedBy(e);
            var reason = $"connecting {provider.Name} failed: {e.Message.Split('\n')[0]}";
            watchdog.ReportOwnFailure(reason);
            Dispose();
            throw ended ?? new DistributedSetupException($"rank {Rank}: {reason}");
        }
        if (watchdog.EndedBy() is Exception late) { Dispose(); throw late; }
    }

    /// <summary>Cancelled when the job failed or rank 0 stopped it early.</summary>
    public CancellationToken Ended => watchdog.Ended;

    /// <summary>Sum or average of every rank's <paramref name="tensor"/>, in place.</summary>
    public void AllReduce(Tensor tensor, ReduceOp op) => Collective(tensor, (c, t) => c.AllReduce(t, op));

    /// <summary>Rank <paramref name="root"/>'s <paramref name="tensor"/> copied into every rank's, in place.</summary>
    public void Broadcast(Tensor tensor, int root = 0) => Collective(tensor, (c, t) => c.Broadcast(t, root));

    /// <summary>Every rank's <paramref name="tensor"/> (all of one shape), stacked: [WorldSize, ...shape].</summary>
    public Tensor AllGather(Tensor tensor)
    {
        CheckDevice(tensor);
        using var input = tensor.contiguous();
        var output = empty([WorldSize, .. tensor.shape], tensor.dtype, Device);
        Run(c => c.AllGather(input, output));
        return output;
    }

    /// <summary>Main-loop progress (an iteration, a batch): what tells a long phase without collectives from a stuck
    /// rank.</summary>
    public void Tick() => counters.Tick();

    /// <summary>This rank failed (an exception in its main thread): the other ranks are told and stop.</summary>
    public void ReportFailure(string reason) => watchdog.ReportOwnFailure(reason);

    /// <summary>If the job has ended (failed elsewhere, or stopped by rank 0), the exception to stop with — wrapping
    /// what the main thread caught, which is often only a consequence (an aborted collective, a CUDA error).</summary>
    public Exception? EndedBy(Exception? caught = null) => watchdog.EndedBy(caught);

    /// <summary>Rank 0 only: ends the job early (the checkpoint saved); the other ranks stop without error.</summary>
    public void Stop(string reason)
    {
        if (watchdog is not MasterWatchdog master) throw new InvalidOperationException("only rank 0 stops the job");
        master.Stop(reason);
        finished = true;
    }

    /// <summary>This rank's part is done: waits until every rank is (the job's last barrier). Throws when the job
    /// failed meanwhile.</summary>
    public void Finish()
    {
        if (finished) return; // rank 0 already stopped the job
        if (Device.type == DeviceType.CUDA) cuda.synchronize(Device); // this rank's last collectives have completed
        watchdog.Finish();
        finished = true;
    }

    void Collective(Tensor tensor, Action<ICollectives, Tensor> op)
    {
        CheckDevice(tensor);
        if (tensor.is_contiguous()) { Run(c => op(c, tensor)); return; }
        using var buffer = tensor.contiguous();
        Run(c => op(c, buffer));
        tensor.copy_(buffer);
    }

    void Run(Action<ICollectives> op)
    {
        if (watchdog.EndedBy() is Exception ended) throw ended;
        counters.EnterCollective();
        try
        {
            op(collectives!);
            counters.LeaveCollective();
        }
        catch (Exception e)
        {
            // A collective that fails because a peer went away usually beats the control channel's news of it by
            // milliseconds: wait a moment for that verdict before taking the blame.
            watchdog.Ended.WaitHandle.WaitOne(VerdictWait);
            if (watchdog.EndedBy(e) is Exception cause) throw cause; // the job had ended: this was a consequence
            var reason = e.Message.Split('\n')[0]; // the backend failed here: this rank's failure, told to all
            watchdog.ReportOwnFailure(reason);
            throw new DistributedFailureException(Rank, reason, e);
        }
    }

    void CheckDevice(Tensor t)
    {
        if (t.device.type != Device.type || (Device.index >= 0 && t.device.index != Device.index))
            throw new ArgumentException($"a collective got a tensor on {t.device}; this rank works on {Device}");
    }

    public void Dispose()
    {
        if (!finished && watchdog.EndedBy() is null) watchdog.ReportOwnFailure("it stopped before finishing its part");
        watchdog.Dispose();
        collectives?.Dispose();
        collectives = null;
    }
}
