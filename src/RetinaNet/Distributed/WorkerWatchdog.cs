namespace RetinaNet.Distributed;

/// <summary>The watchdog of every rank but 0: beats to rank 0 with this rank's counters, follows rank 0's verdicts
/// (abort, stop, done), and judges rank 0 itself: a closed connection or silence longer than the timeout.</summary>
sealed class WorkerWatchdog : Watchdog
{
    readonly ControlLink link;
    readonly ManualResetEventSlim released = new();
    TimeSpan lastHeard;

    public WorkerWatchdog(int rank, ControlLink link, ProgressCounters counters, WatchdogOptions options) : base(rank,
        counters, options)
    {
        this.link = link;
        lastHeard = Now;
        Background("retinanet-watch-rank0", Read);
        Background("retinanet-watchdog", Beat);
    }

    void Read()
    {
        try
        {
            while (true)
            {
                var (kind, body) = link.Receive();
                switch (kind)
                {
                    case ControlMessage.Beat: lock (gate) lastHeard = Now; break;
                    case ControlMessage.Abort:
                        int failed = body.ReadInt32();
                        Fail(failed < 0 ? null : failed, body.ReadString());
                        break;
                    case ControlMessage.Stop: Stopped(body.ReadString()); break;
                    case ControlMessage.Done: released.Set(); return;
                }
            }
        }
        catch (Exception e) when (IsDisconnect(e))
        {
            if (!released.IsSet) Fail(0, "its connection closed: rank 0 exited or crashed");
        }
    }

    void Beat()
    {
        while (!closing)
        {
            if (Ended.IsCancellationRequested) return;
            link.TrySend(ControlMessage.Beat, w =>
            {
                w.Write(counters.Collectives);
                w.Write(counters.Left);
                w.Write(counters.Progress);
            });
            try { PollBackend(); }
            catch (Exception e) { Fail(rank, $"its watchdog failed: {e.Message}"); }
            TimeSpan silent;
            lock (gate) silent = Now - lastHeard;
            if (silent > options.Timeout && !released.IsSet) Fail(0,
                $"no heartbeat for {Seconds(silent)} (the process is frozen, or its machine or network is down)");
            Thread.Sleep(options.Beat);
        }
    }

    protected override void Tell(DistributedFailureException failure)
    {
        if (failure.FailedRank == rank) link.TrySend(ControlMessage.Fail, w => w.Write(failure.Reason));
    }

    /// <summary>Says goodbye and waits until rank 0 has heard it from every rank (or the job failed), at most the
    /// timeout: rank 0 may still be busy after the last collective (writing, scoring), but not forever.</summary>
    public override void Finish()
    {
        if (EndedBy() is Exception e) throw e;
        link.TrySend(ControlMessage.Bye);
        if (WaitHandle.WaitAny([released.WaitHandle, Ended.WaitHandle], options.Timeout) == WaitHandle.WaitTimeout)
            Fail(0, $"it did not finish within {Seconds(options.Timeout)} after rank {rank} had");
        if (!released.IsSet && EndedBy() is Exception late) throw late;
        closing = true;
    }

    public override void Dispose()
    {
        base.Dispose();
        link.Dispose();
    }
}
