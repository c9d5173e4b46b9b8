using System.Diagnostics;
using System.Text.RegularExpressions;
using RetinaNet.Distributed;
using Xunit;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Distributed;

/// <summary>Rendezvous, collectives and the watchdog's verdicts with ranks as threads of this process, over the
/// collectives' CPU test double (expected values computed by hand).</summary>
public class ProcessGroupTests
{
    static RankAssignment Rank(int rank, int world, MasterEndpoint master) =>
        new(rank, world, rank, world, master, "RANK/WORLD_SIZE");

    /// <summary>Starts ranks 0..world-1 (those in <paramref name="only"/>, if given) concurrently. A test of the
    /// watchdog's short timeout gives the join a long one (<paramref name="joinSeconds"/>): on a loaded 2-core
    /// machine, starting the rank threads alone once took longer than 1.5 s.</summary>
    static Task<ProcessGroup>[] Start(int world, double timeoutSeconds, int[]? only = null,
        Func<int, RankAssignment>? assign = null, double? joinSeconds = null)
    {
        var master = MasterEndpoint.FreeLocalPort();
        var options = new WatchdogOptions(TimeSpan.FromSeconds(timeoutSeconds), HardExit: null)
        {
            Join = TimeSpan.FromSeconds(joinSeconds ?? timeoutSeconds),
        };
        return (only ?? Enumerable.Range(0, world).ToArray()).Select(r =>
            Task.Factory.StartNew(() => ProcessGroup.Start(assign?.Invoke(r) ?? Rank(r, world, master),
                new TcpCollectivesProvider(), CPU, options), TaskCreationOptions.LongRunning)).ToArray();
    }

    static ProcessGroup[] Started(Task<ProcessGroup>[] ranks) =>
        Task.WhenAll(ranks).WaitAsync(TimeSpan.FromSeconds(60)).GetAwaiter().GetResult();

    static Task[] OnEach(ProcessGroup[] groups, Action<ProcessGroup> body) =>
        groups.Select(g => Task.Factory.StartNew(() => body(g), TaskCreationOptions.LongRunning)).ToArray();

    static void Wait(params Task[] tasks) =>
        Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(60)).GetAwaiter().GetResult();

    [Fact]
    public void CollectivesGiveTheSameHandComputedResultsOnEveryRank()
    {
        var groups = Started(Start(3, 30));
        var results = new float[3][];
        Wait(OnEach(groups, g =>
        {
            int r = g.Rank;
            using var sum = tensor(new float[] { r + 1, 10 * (r + 1) });
            g.AllReduce(sum, ReduceOp.Sum);
            using var mean = tensor(new float[] { r + 1, 10 * (r + 1) });
            g.AllReduce(mean, ReduceOp.Average);
            using var from0 = tensor(new float[] { r, r });
            g.Broadcast(from0, 0);
            using var from2 = tensor(new long[] { r });
            g.Broadcast(from2, 2);
            using var gathered = g.AllGather(tensor(new double[] { r, r * r }));
            // not contiguous: reduced in place all the same
            using var strided = tensor(new float[] { r, 2 * r, 3 * r, 4 * r }).view(2, 2).t();
            g.AllReduce(strided, ReduceOp.Sum);
            Assert.Equal([3L, 2L], gathered.shape);
            results[r] = [.. sum.data<float>(), .. mean.data<float>(), .. from0.data<float>(), from2.item<long>(),
                .. gathered.to(ScalarType.Float32).data<float>(), .. strided.contiguous().data<float>()];
            g.Finish();
        }));
        // strided: [[0+1+2, 3·(0+1+2)], [2·3, 4·3]]
        float[] expected = [6, 60, 2, 20, 0, 0, 2, 0, 0, 1, 1, 2, 4, 3, 9, 6, 12];
        foreach (var r in results) Assert.Equal(expected, r);
        foreach (var g in groups) g.Dispose();
    }

    [Fact]
    public void MissingRankIsNamedWhenTheRendezvousTimesOut()
    {
        var ranks = Start(3, 1.5, only: [0, 1]);
        var master = Assert.Throws<DistributedSetupException>(() => ranks[0].GetAwaiter().GetResult());
        Assert.Contains("rank 2 did not join within 2 s", master.Message);
        var joined = Assert.Throws<DistributedSetupException>(() => ranks[1].GetAwaiter().GetResult());
        Assert.Contains("the job did not start", joined.Message);
    }

    [Fact]
    public void ARankWithAnotherWorldSizeIsRefused()
    {
        var master = MasterEndpoint.FreeLocalPort();
        var ranks = Start(2, 10, assign: r => Rank(r, r == 0 ? 2 : 3, master));
        Assert.Contains("rank 1",
            Assert.Throws<DistributedSetupException>(() => ranks[0].GetAwaiter().GetResult()).Message);
        var refused = Assert.Throws<DistributedSetupException>(() => ranks[1].GetAwaiter().GetResult()).Message;
        Assert.Contains("rank 0 refused rank 1", refused);
        Assert.Contains("has world size 3, rank 0 has 2", refused);
    }

    [Fact]
    public void TwoProcessesClaimingOneRankAreRefused()
    {
        var master = MasterEndpoint.FreeLocalPort();
        var ranks = Start(3, 10, assign: r => Rank(Math.Min(r, 1), 3, master));
        Assert.Contains("rank 1 joined twice",
            Assert.Throws<DistributedSetupException>(() => ranks[0].GetAwaiter().GetResult()).Message);
    }

    [Fact]
    public void ARankThatFailsStopsTheOthersWithItsReason()
    {
        var groups = Started(Start(3, 30));
        var clock = Stopwatch.StartNew();
        // waits for rank 2, which fails instead
        var waiting = OnEach(groups[..2], g => g.AllReduce(ones(4), ReduceOp.Sum));
        groups[2].ReportFailure("disk full");
        foreach (var t in waiting)
        {
            var e = Assert.Throws<DistributedFailureException>(() =>
                t.WaitAsync(TimeSpan.FromSeconds(30)).GetAwaiter().GetResult());
            Assert.Equal(2, e.FailedRank);
            Assert.Equal("rank 2 failed: disk full", e.Message);
        }
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
        foreach (var g in groups) g.Dispose();
    }

    [Fact]
    public void ARankThatKeepsTheOthersWaitingIsNamedAfterTheTimeout()
    {
        var groups = Started(Start(2, 1.5, joinSeconds: 60));
        Wait(OnEach(groups, g => g.AllReduce(ones(4), ReduceOp.Sum)));
        var clock = Stopwatch.StartNew();
        // rank 1 never comes
        var e = Assert.Throws<DistributedFailureException>(() => groups[0].AllReduce(ones(4), ReduceOp.Sum));
        Assert.Equal(1, e.FailedRank);
        // the waited seconds depend on when the beat judges: over 1.5 s, later on a loaded machine (a CI run failed
        // on exactly "2 s")
        var waited = Regex.Match(e.Message, @"kept the other ranks waiting at collective #2 for (\d+) s");
        Assert.True(waited.Success, e.Message);
        Assert.InRange(int.Parse(waited.Groups[1].Value), 2, 10);
        Assert.InRange(clock.Elapsed.TotalSeconds, 1.4, 10);
        Assert.True(groups[1].Ended.WaitHandle.WaitOne(TimeSpan.FromSeconds(10)), "the stuck rank was not told");
        Assert.Equal(1, Assert.IsType<DistributedFailureException>(groups[1].EndedBy()).FailedRank);
        foreach (var g in groups) g.Dispose();
    }

    /// <summary>Both ranks left collective #1 and work longer than the timeout (a slow step on a loaded machine):
    /// nothing is stuck. Then rank 1 stays in its own work while rank 0 waits at #2: rank 1 is named, not the
    /// collective (seen once in CI: a slow step of rank 0 was taken for a stuck collective).</summary>
    [Fact]
    public void WorkBetweenCollectivesIsNotAStuckCollective()
    {
        var groups = Started(Start(2, 1.5, joinSeconds: 60));
        Wait(OnEach(groups, g => g.AllReduce(ones(4), ReduceOp.Sum)));
        Thread.Sleep(4000); // both work, outside any collective, for more than 2 timeouts
        Assert.All(groups, g => Assert.Null(g.EndedBy()));
        Wait(OnEach(groups, g => g.AllReduce(ones(4), ReduceOp.Sum)));
        Thread.Sleep(4000); // rank 1 "hangs" in its work; rank 0 works as long, then waits at #3
        Assert.All(groups, g => Assert.Null(g.EndedBy()));
        var e = Assert.Throws<DistributedFailureException>(() => groups[0].AllReduce(ones(4), ReduceOp.Sum));
        Assert.Equal(1, e.FailedRank);
        Assert.Contains("kept the other ranks waiting at collective #3", e.Message);
        foreach (var g in groups) g.Dispose();
    }

    [Fact]
    public void RanksStuckInOneCollectiveAreReportedWithoutBlamingOne()
    {
        var groups = Started(Start(2, 1.5, joinSeconds: 60));
        // each waits for the other to send first: both are in collective #1 and neither moves
        var stuck = OnEach(groups, g => g.Broadcast(ones(4), root: 1 - g.Rank));
        foreach (var t in stuck)
        {
            var e = Assert.Throws<DistributedFailureException>(() =>
                t.WaitAsync(TimeSpan.FromSeconds(30)).GetAwaiter().GetResult());
            Assert.Null(e.FailedRank);
            Assert.Contains("all wait in collective #1", e.Message);
        }
        foreach (var g in groups) g.Dispose();
    }

    [Fact]
    public void StopByRank0EndsTheOthersWithoutError()
    {
        var groups = Started(Start(2, 30));
        var waiting = OnEach(groups[1..], g => g.AllReduce(ones(4), ReduceOp.Sum));
        groups[0].Stop("Ctrl-C at iteration 7");
        var e = Assert.Throws<DistributedStoppedException>(() =>
            waiting[0].WaitAsync(TimeSpan.FromSeconds(30)).GetAwaiter().GetResult());
        Assert.Equal("stopped by rank 0: Ctrl-C at iteration 7", e.Message);
        foreach (var g in groups) g.Dispose();
    }

    [Fact]
    public void FinishIsABarrier()
    {
        var groups = Started(Start(2, 30));
        var clock = Stopwatch.StartNew();
        var early = OnEach(groups[1..], g => g.Finish());
        Thread.Sleep(1000);
        Assert.False(early[0].IsCompleted, "rank 1 left before rank 0 finished");
        groups[0].Finish();
        Wait(early);
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1));
        foreach (var g in groups) g.Dispose();
    }
}
