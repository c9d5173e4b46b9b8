namespace RetinaNet.Distributed;

/// <summary>Rank 0's watchdog: reads every rank's beats, judges who is failing, and tells everyone.
/// <para>Rules, checked every beat (T = the timeout): a rank silent for T; a rank whose connection closes before its
/// goodbye; a rank that reports a failure; a rank behind the others (fewer collectives entered) while some rank has
/// waited at the next collective for T; and, naming no rank, all unfinished ranks inside the same collective with
/// no progress for T (the collective itself is stuck).</para></summary>
sealed class MasterWatchdog : Watchdog
{
    sealed class RankState
    {
        public long Collectives, Left, Progress;
        public bool InCollective => Left < Collectives;
        public TimeSpan LastHeard, LastProgress;
        public bool Finished, Gone;
    }

    readonly Rendezvous.Peer[] peers;
    readonly RankState[] states; // by rank; rank 0 is this process
    // collective number → when some rank first entered it
    readonly SortedDictionary<long, TimeSpan> firstReached = new();
    long highestSeen;
    bool stopping;

    public MasterWatchdog(Rendezvous.Peer[] peers, ProgressCounters counters, WatchdogOptions options)
        : base(0, counters, options)
    {
        this.peers = peers;
        states = Enumerable.Range(0, peers.Length + 1)
            .Select(_ => new RankState { LastHeard = Now, LastProgress = Now }).ToArray();
        foreach (var peer in peers) Background($"retinanet-watch-rank{peer.Rank}", () => Read(peer));
        Background("retinanet-watchdog", Beat);
    }

    void Read(Rendezvous.Peer peer)
    {
        var state = states[peer.Rank];
        try
        {
            while (true)
            {
                var (kind, body) = peer.Link.Receive();
                switch (kind)
                {
                    case ControlMessage.Beat:
                        long c = body.ReadInt64(), l = body.ReadInt64(), p = body.ReadInt64();
                        lock (gate) Update(state, c, l, p);
                        break;
                    case ControlMessage.Fail: Fail(peer.Rank, body.ReadString()); break;
                    case ControlMessage.Bye: lock (gate) state.Finished = true; break;
                }
            }
        }
        catch (Exception e) when (IsDisconnect(e))
        {
            bool expected;
            lock (gate) { state.Gone = true; expected = state.Finished || stopping; }
            if (!expected)
                Fail(peer.Rank, "it exited without finishing (killed, crashed, or its machine went down; " +
                    $"pid {peer.Pid} on {peer.Host})");
        }
    }

    void Beat()
    {
        while (!closing)
        {
            Thread.Sleep(options.Beat);
            if (closing || Ended.IsCancellationRequested) return;
            foreach (var peer in peers)
                if (!states[peer.Rank].Gone) peer.Link.TrySend(ControlMessage.Beat);
            try
            {
                PollBackend();
                if (Judge() is var (failed, reason)) Fail(failed, reason);
            }
            catch (Exception e) // never take the process down silently
            {
                Fail(rank, $"its watchdog failed: {e.Message}");
            }
        }
    }

    /// <summary>The first rule broken, as (failed rank or null, reason), or null.</summary>
    (int?, string)? Judge()
    {
        var now = Now;
        lock (gate)
        {
            Update(states[0], counters.Collectives, counters.Left, counters.Progress);

            for (int r = 1; r < states.Length; r++)
                if (!states[r].Finished && !states[r].Gone && now - states[r].LastHeard > options.Timeout)
                    return (r, $"no heartbeat for {Seconds(now - states[r].LastHeard)} " +
                        "(the process is frozen, or its machine or network is down)");

            long highest = states.Max(s => s.Collectives);
            for (long k = highestSeen + 1; k <= highest; k++) firstReached[k] = now;
            highestSeen = Math.Max(highestSeen, highest);
            for (int r = 0; r < states.Length; r++)
            {
                var s = states[r];
                if (s.Finished || s.Collectives >= highest) continue;
                // a rank not heard for two beats may be frozen: the silence rule judges it, naming the real cause
                if (now - s.LastHeard > 2 * options.Beat) continue;
                var waited = now - firstReached[s.Collectives + 1];
                if (waited > options.Timeout)
                    return (r, $"it kept the other ranks waiting at collective #{s.Collectives + 1} " +
                        $"for {Seconds(waited)} (hung, or far slower than the rest; --dist-timeout sets the limit)");
            }
            // stuck only if all are inside it: ranks that left it are working (a slow step is not a stuck collective)
            var active = states.Where(s => !s.Finished && !s.Gone).ToArray();
            if (active.Length >= 2 && highest > 0 && active.All(s => s.Collectives == highest && s.InCollective)
                && now - active.Max(s => s.LastProgress) > options.Timeout)
                return (null, $"no rank has made progress for {Seconds(now - active.Max(s => s.LastProgress))}; " +
                    $"all wait in collective #{highest} (NCCL or the network is stuck)");

            long lowest = states.Where(s => !s.Finished).Select(s => s.Collectives).DefaultIfEmpty(highest).Min();
            while (firstReached.Count > 0 && firstReached.Keys.First() <= lowest)
                firstReached.Remove(firstReached.Keys.First());
            return null;
        }
    }

    void Update(RankState state, long collectives, long left, long progress)
    {
        var now = Now;
        if (collectives != state.Collectives || left != state.Left || progress != state.Progress)
            state.LastProgress = now;
        (state.Collectives, state.Left, state.Progress, state.LastHeard) = (collectives, left, progress, now);
    }

    protected override void Tell(DistributedFailureException failure)
    {
        // the failed rank too: a hung rank learns the verdict and ends itself after the grace period
        foreach (var peer in peers)
            peer.Link.TrySend(ControlMessage.Abort,
                w => { w.Write(failure.FailedRank ?? -1); w.Write(failure.Reason); });
    }

    /// <summary>Waits (up to the timeout) until every rank has said goodbye, then releases them all.</summary>
    public override void Finish()
    {
        lock (gate) states[0].Finished = true;
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            if (EndedBy() is Exception e) throw e;
            int[] pending;
            lock (gate) pending = Enumerable.Range(1, peers.Length).Where(r => !states[r].Finished).ToArray();
            if (pending.Length == 0) break;
            if (waited.Elapsed > options.Timeout)
            {
                Fail(pending[0], $"it did not finish within {Seconds(options.Timeout)} after rank 0 had");
                throw EndedBy()!;
            }
            Thread.Sleep(20);
        }
        closing = true;
        foreach (var peer in peers) peer.Link.TrySend(ControlMessage.Done);
    }

    /// <summary>Rank 0 ends the job early (Ctrl-C, checkpoint saved): the others stop without error. Waits a moment
    /// for them to go, so that none is left behind.</summary>
    public void Stop(string reason)
    {
        lock (gate) stopping = true;
        foreach (var peer in peers) peer.Link.TrySend(ControlMessage.Stop, w => w.Write(reason));
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (waited.Elapsed < options.Grace + options.Beat)
        {
            lock (gate) if (states.Skip(1).All(s => s.Gone || s.Finished)) break;
            Thread.Sleep(20);
        }
        closing = true;
    }

    public override void Dispose()
    {
        base.Dispose();
        foreach (var peer in peers) peer.Link.Dispose();
    }
}
