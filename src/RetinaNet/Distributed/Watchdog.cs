using System.Diagnostics;

namespace RetinaNet.Distributed;

/// <summary>What this rank's main thread has done so far, for the watchdog: collectives entered (in the order every
/// rank enters them) and left, and main-loop progress (iterations, batches). Entered and left tell a rank waiting
/// in a collective from one working between two: only the first can be stuck in it.</summary>
public sealed class ProgressCounters
{
    long collectives, left, progress;
    public long Collectives => Interlocked.Read(ref collectives);
    public long Left => Interlocked.Read(ref left);
    public long Progress => Interlocked.Read(ref progress);
    public void EnterCollective() => Interlocked.Increment(ref collectives);
    public void LeaveCollective() => Interlocked.Increment(ref left);
    public void Tick() => Interlocked.Increment(ref progress);
}

/// <summary>Timing of the failure handling: <see cref="Timeout"/> bounds every wait on another rank (joining, a
/// silent peer, a rank that keeps the others waiting at a collective); <see cref="Beat"/> is the heartbeat period;
/// <see cref="Grace"/> is how long a failed rank's main thread gets to stop by itself before the process is ended
/// hard (<see cref="HardExit"/>: exit code and "error: ..." line; null in tests that run ranks as threads).</summary>
public sealed record WatchdogOptions(TimeSpan Timeout, Action<int, string>? HardExit)
{
    public TimeSpan Beat { get; init;
        } = TimeSpan.FromTicks(Math.Clamp(Timeout.Ticks / 5, TimeSpan.FromMilliseconds(50).Ticks,
        TimeSpan.FromSeconds(1).Ticks));
    public TimeSpan Grace { get; init; } = Timeout < TimeSpan.FromSeconds(10) ? Timeout : TimeSpan.FromSeconds(10);
    /// <summary>How long rank 0 waits for the others to join (and they for it): the timeout unless set.</summary>
    public TimeSpan Join { get; init; } = Timeout;
}

/// <summary>The control channel at work during a job, so that no rank ever waits silently on a dead or stuck one.
/// Rank 0 holds a connection to every other rank (from the rendezvous); both sides send a heartbeat every
/// <see cref="WatchdogOptions.Beat"/>, the other ranks' beats carrying their counters. A failure — a rank's own
/// exception, a connection that closes without a goodbye (killed, crashed), a silent peer, a rank that keeps the
/// others waiting at a collective longer than the timeout, an NCCL error — is broadcast by rank 0 to all; each rank
/// then aborts its collectives (which releases a thread waiting on the GPU for a peer), its main thread throws
/// <see cref="DistributedFailureException"/> naming the failed rank, and if it has not exited after the grace period
/// the process is ended hard. The end of a job is a barrier (every rank says goodbye, rank 0 answers when all have),
/// so no rank tears down its communicator while another may still use it.</summary>
abstract class Watchdog : IDisposable
{
    protected readonly int rank;
    protected readonly WatchdogOptions options;
    protected readonly ProgressCounters counters;
    protected readonly object gate = new();
    readonly CancellationTokenSource ended = new();
    readonly Stopwatch clock = Stopwatch.StartNew();
    DistributedFailureException? failure;
    string? stopReason;
    protected volatile bool closing;

    protected Watchdog(int rank, ProgressCounters counters, WatchdogOptions options)
        => (this.rank, this.counters, this.options) = (rank, counters, options);

    /// <summary>Aborts the backend (set once it is connected); runs on its own thread when the job ends
    /// early.</summary>
    public Action? AbortBackend { get; set; }
    /// <summary>The backend's asynchronous error, polled every beat.</summary>
    public Func<string?>? BackendError { get; set; }

    /// <summary>Cancelled when the job failed or rank 0 stopped it.</summary>
    public CancellationToken Ended => ended.Token;
    public DistributedFailureException? Failure { get { lock (gate) return failure; } }
    public string? StopReason { get { lock (gate) return stopReason; } }
    /// <summary>The exception the main thread should stop with, or null while the job runs.</summary>
    public Exception? EndedBy(Exception? inner = null)
    {
        lock (gate)
            return failure is not null ? new DistributedFailureException(failure.FailedRank, failure.Reason, inner)
                : stopReason is not null ? new DistributedStoppedException(stopReason, inner) : null;
    }

    protected TimeSpan Now => clock.Elapsed;
    protected static string Seconds(TimeSpan t) => $"{t.TotalSeconds:F0} s";

    /// <summary>This rank's main thread failed: the others are told and stop.</summary>
    public void ReportOwnFailure(string reason) => Fail(rank, reason);

    /// <summary>Normal end of this rank's part: the goodbye barrier. Throws if the job failed meanwhile.</summary>
    public abstract void Finish();

    /// <summary>Records the first failure; later ones (consequences of the first) are ignored.</summary>
    protected void Fail(int? failedRank, string reason)
    {
        DistributedFailureException f;
        lock (gate)
        {
            if (failure is not null || stopReason is not null || closing) return;
            failure = f = new DistributedFailureException(failedRank, reason);
        }
        Tell(f);
        End(1, $"error: {f.Message}");
    }

    protected void Stopped(string reason)
    {
        lock (gate)
        {
            if (failure is not null || stopReason is not null || closing) return;
            stopReason = reason;
        }
        End(0, $"stopped by rank 0: {reason}");
    }

    /// <summary>Passes a failure on: rank 0 to every rank, the others to rank 0 when the failure is their
    /// own.</summary>
    protected abstract void Tell(DistributedFailureException failure);

    void End(int exitCode, string line)
    {
        ended.Cancel();
        var abort = AbortBackend;
        if (abort is not null) Background("retinanet-abort", () => { try { abort();
            } catch (Exception) { /* the process is ending anyway */ } });
        var hardExit = options.HardExit;
        if (hardExit is not null) Background("retinanet-hard-exit", () => { Thread.Sleep(options.Grace);
            hardExit(exitCode, line); });
    }

    protected void PollBackend()
    {
        if (BackendError?.Invoke() is string error) Fail(rank, error);
    }

    protected static void Background(string name, Action body)
        => new Thread(() => body()) { IsBackground = true, Name = name }.Start();

    /// <summary>Whatever ends a control connection's reader (a closed socket, a garbled frame) counts as the peer
    /// gone; an exception must never escape a watchdog thread, which would end the process.</summary>
    protected static bool IsDisconnect(Exception e) => e is not OutOfMemoryException;

    /// <summary>Stops watching; disconnects after this are expected. (The token source is left to the collector:
    /// a late failure may still cancel it.)</summary>
    public virtual void Dispose() => closing = true;
}
