using RetinaNet.Data;
using RetinaNet.Data.Loading;
using RetinaNet.Data.Transforms;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Data;

public class LoaderTests
{
    /// <summary>A fake image whose single pixel value records what the worker drew from its random source.</summary>
    static PreparedImage Fake(int index, Random random, int delayMs = 0)
    {
        if (delayMs > 0) Thread.Sleep(random.Next(delayMs));
        using var value = ((byte)random.Next(256)).ToScalar();
        var pixels = full(3, 1, 1, value, ScalarType.Byte);
        return new PreparedImage(index, index, new ImageWithBoxes(pixels, [], []), 1, 1);
    }

    static HostBatch Collate(IReadOnlyList<PreparedImage> images, IReadOnlyList<bool> padding,
        (int Height, int Width)? canvas) => HostBatch.Collate(images, padding, 1, pin: false, atLeast: canvas);

    static Func<BatchPlan?> Plan(int batches, int size)
    {
        int next = 0;
        return () => next >= batches ? null
            : new BatchPlan(Enumerable.Range(next * size, size).ToArray(), new bool[size], next++);
    }

    static List<(int[] Indices, byte[] Draws, object? State)> Drain(PrefetchingLoader loader)
    {
        var result = new List<(int[], byte[], object?)>();
        while (loader.Next() is HostBatch b)
            using (b) result.Add((b.Indices, b.Pixels.flatten().data<byte>().ToArray(), b.ResumeState));
        return result;
    }

    [Fact]
    public void BatchesComeInPlanOrderWithSeededRandomnessWhateverTheTiming()
    {
        List<(int[] Indices, byte[] Draws, object? State)> Run(int workers)
        {
            using var loader = new PrefetchingLoader((i, r) => Fake(i, r, 5), Collate, Plan(12, 4), workers,
                prefetch: 3, seed: 7);
            return Drain(loader);
        }
        var one = Run(1);
        var four = Run(4);
        Assert.Equal(12, one.Count);
        for (int k = 0; k < 12; k++)
        {
            Assert.Equal(Enumerable.Range(4 * k, 4), one[k].Indices);
            Assert.Equal(one[k].Indices, four[k].Indices);
            Assert.Equal(one[k].Draws, four[k].Draws);
            Assert.Equal(k, one[k].State);
        }
    }

    [Fact]
    public void ResumingAtABatchNumberGivesTheSameRandomnessAsRunningThrough()
    {
        using var whole = new PrefetchingLoader((i, r) => Fake(i, r), Collate, Plan(6, 3), 2, 2, seed: 3);
        var all = Drain(whole);
        int skipped = 0;
        var plan = Plan(6, 3);
        for (int k = 0; k < 4; k++) { plan(); skipped++; }
        using var resumed = new PrefetchingLoader((i, r) => Fake(i, r), Collate, plan, 2, 2, seed: 3,
            firstBatchNumber: skipped);
        var rest = Drain(resumed);
        Assert.Equal(all.Skip(4).Select(b => b.Draws), rest.Select(b => b.Draws));
    }

    [Fact]
    public void AWorkersErrorReachesTheCallerWithTheFileName()
    {
        using var loader = new PrefetchingLoader((i, r) =>
            i == 9 ? throw new BadInputException("/data/broken.jpg", "truncated or corrupt JPEG data") : Fake(i, r, 2),
            Collate, Plan(10, 4), 3, 2, seed: 0);
        using (loader.Next()) { }
        using (loader.Next()) { }
        var e = Assert.Throws<BadInputException>(() => loader.Next());
        Assert.Contains("/data/broken.jpg", e.Message);
    }

    [Fact]
    public void SkippedImagesShrinkTheBatchInsteadOfFailing()
    {
        using var loader = new PrefetchingLoader((i, r) => i % 2 == 0 ? null : Fake(i, r), Collate, Plan(2, 4), 2, 1,
            seed: 0);
        var batches = Drain(loader);
        Assert.Equal(new[] { 1, 3 }, batches[0].Indices);
        Assert.Equal(new[] { 5, 7 }, batches[1].Indices);
    }

    [Fact]
    public void AtMostPrefetchBatchesAreLoadedAhead()
    {
        int loaded = 0, consumed = 0, maxAhead = 0;
        var gate = new object();
        using var loader = new PrefetchingLoader((i, r) =>
        {
            lock (gate) { loaded++; maxAhead = Math.Max(maxAhead, loaded - consumed); }
            return Fake(i, r);
        }, Collate, Plan(30, 2), 4, prefetch: 3, seed: 0);
        while (loader.Next() is HostBatch b)
        {
            Thread.Sleep(2);
            lock (gate) consumed += b.Count;
            b.Dispose();
        }
        Assert.Equal(60, loaded);
        Assert.InRange(maxAhead, 1, 4 * 2); // prefetch (3) batches in flight plus the one being consumed, of 2 images
    }

    [Fact]
    public async Task DisposingWithWorkInFlightReturns()
    {
        var loader = new PrefetchingLoader((i, r) => Fake(i, r, 20), Collate, Plan(100, 4), 2, 4, seed: 0);
        using (loader.Next()) { }
        var t = Task.Run(loader.Dispose);
        // else Dispose hung with work in flight
        Assert.Same(t, await Task.WhenAny(t, Task.Delay(TimeSpan.FromSeconds(20))));
    }
}
