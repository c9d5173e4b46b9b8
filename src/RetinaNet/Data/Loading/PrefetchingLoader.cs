using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;

namespace RetinaNet.Data.Loading;

/// <summary>What to load next: dataset indices, which of them only pad the batch, the sampler state after it, and
/// the smallest (height, width) to pad it to (null: its largest image decides).</summary>
public sealed record BatchPlan(int[] Indices, bool[] Padding, object? ResumeState,
    (int Height, int Width)? Canvas = null)
{
    /// <summary>The plan of a sampler's batch (no sampler state: one pass).</summary>
    public static BatchPlan Of(ShardEntry[] batch, (int Height, int Width)? canvas = null)
        => new(batch.Select(e => e.Index).ToArray(), batch.Select(e => e.IsPadding).ToArray(), null, canvas);
}

/// <summary>Loads batches ahead of the consumer on worker threads. The consumer thread alone asks
/// <c>plan</c> for batches (so the sampler needs no locking) and keeps at most <c>prefetch</c> batches in flight:
/// memory stays bounded. Images of one batch load in parallel; the worker that finishes a batch's last image
/// collates it. Batches come out in plan order whatever the thread timing, and every image's randomness is seeded
/// by (seed, batch number, position), so a run — and a resumed run — is reproducible. In a multi-process job the
/// position is the image's place in the global batch (rank r's j-th image is position r + j × ranks, as the sampler
/// strides), so every image gets the same randomness whatever the number of processes. A worker's exception
/// surfaces from <see cref="Next"/> as it was thrown (naming the file); the remaining work is abandoned, never
/// waited on forever.</summary>
public sealed class PrefetchingLoader : IDisposable
{
    /// <summary>Loads one dataset index with the given randomness; returns null for an image to skip (already
    /// reported).</summary>
    public delegate PreparedImage? LoadImage(int index, Random random);
    public delegate HostBatch Collate(IReadOnlyList<PreparedImage> images, IReadOnlyList<bool> padding,
        (int Height, int Width)? canvas);

    readonly LoadImage load;
    readonly Collate collate;
    readonly Func<BatchPlan?> plan;
    readonly int prefetch;
    readonly long seed;
    readonly (int Rank, int Ranks) shard;
    readonly BlockingCollection<Action> work = new();
    readonly Thread[] workers;
    readonly Queue<Slot> inFlight = new();
    readonly CancellationTokenSource cancel = new();
    long batchNumber;
    bool exhausted;

    /// <param name="shard">This process's rank and the number of ranks (seeding positions in the global
    /// batch).</param> <param name="workerStart">Runs first on every worker thread (a rank makes its GPU current
    /// there).</param>
    public PrefetchingLoader(LoadImage load, Collate collate, Func<BatchPlan?> plan, int workers, int prefetch,
        long seed, long firstBatchNumber = 0,
        (int Rank, int Ranks)? shard = null, Action? workerStart = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(prefetch, 1);
        (this.load, this.collate, this.plan, this.prefetch, this.seed, batchNumber) = (load, collate, plan, prefetch,
            seed, firstBatchNumber);
        this.shard = shard ?? (0, 1);
        this.workers = new Thread[workers];
        for (int i = 0; i < workers; i++)
        {
            this.workers[i] = new Thread(() => { workerStart?.Invoke(); Work();
                }) { IsBackground = true, Name = $"retinanet-loader-{i}" };
            this.workers[i].Start();
        }
    }

    /// <summary>The next batch in plan order, or null when the plan is exhausted. Throws a worker's
    /// exception.</summary>
    public HostBatch? Next()
    {
        ObjectDisposedException.ThrowIf(cancel.IsCancellationRequested, this);
        Fill();
        if (inFlight.Count == 0) return null;
        var slot = inFlight.Dequeue();
        Fill();
        try
        {
            var batch = slot.Done.Task.GetAwaiter().GetResult();
            batch.ResumeState = slot.Plan.ResumeState;
            return batch;
        }
        catch (Exception e)
        {
            Abandon();
            ExceptionDispatchInfo.Capture(e).Throw();
            throw;
        }
    }

    void Fill()
    {
        while (!exhausted && inFlight.Count < prefetch)
        {
            var next = plan();
            if (next is null) { exhausted = true; break; }
            var slot = new Slot(next, batchNumber++);
            inFlight.Enqueue(slot);
            for (int position = 0; position < next.Indices.Length; position++)
            {
                int p = position;
                work.Add(() => Run(slot, p));
            }
            if (next.Indices.Length == 0) Finish(slot);
        }
    }

    void Run(Slot slot, int position)
    {
        if (slot.Done.Task.IsCompleted) return; // a sibling failed: no point loading the rest
        try
        {
            var random = new Random(SeedOf(seed, slot.Number, shard.Rank + position * shard.Ranks));
            slot.Images[position] = load(slot.Plan.Indices[position], random);
            if (slot.Done.Task.IsFaulted) slot.DisposeImages(); // a sibling failed while this one loaded
        }
        catch (Exception e)
        {
            if (slot.Done.TrySetException(e)) slot.DisposeImages();
            return;
        }
        if (Interlocked.Decrement(ref slot.Pending) == 0) Finish(slot);
    }

    void Finish(Slot slot)
    {
        try
        {
            var kept = Enumerable.Range(0, slot.Images.Length).Where(i => slot.Images[i] is not null).ToArray();
            var batch = collate(kept.Select(i => slot.Images[i]!).ToArray(),
                kept.Select(i => slot.Plan.Padding[i]).ToArray(), slot.Plan.Canvas);
            slot.DisposeImages();
            slot.Done.TrySetResult(batch);
        }
        catch (Exception e)
        {
            slot.DisposeImages();
            slot.Done.TrySetException(e);
        }
    }

    /// <summary>A 31-bit seed that depends on every input bit (SplitMix64's finaliser), stable across .NET
    /// versions.</summary>
    public static int SeedOf(long seed, long batch, int position) =>
        (int)(SplitMix64.Mix(SplitMix64.Mix(SplitMix64.Mix((ulong)seed) ^ (ulong)batch) ^ (ulong)position)
            & 0x7FFFFFFF);

    void Work()
    {
        try
        {
            foreach (var item in work.GetConsumingEnumerable(cancel.Token)) item();
        }
        catch (OperationCanceledException) { }
    }

    void Abandon()
    {
        while (inFlight.Count > 0)
        {
            var slot = inFlight.Dequeue();
            slot.Done.Task.ContinueWith(t => { if (t.IsCompletedSuccessfully) t.Result.Dispose();
                }, TaskScheduler.Default);
        }
        exhausted = true;
    }

    public void Dispose()
    {
        if (cancel.IsCancellationRequested) return;
        Abandon();
        cancel.Cancel();
        work.CompleteAdding();
        foreach (var t in workers) t.Join();
        work.Dispose();
        cancel.Dispose();
    }

    sealed class Slot(BatchPlan plan, long number)
    {
        public BatchPlan Plan { get; } = plan;
        public long Number { get; } = number;
        public PreparedImage?[] Images { get; } = new PreparedImage?[plan.Indices.Length];
        public int Pending = plan.Indices.Length;
        public TaskCompletionSource<HostBatch> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void DisposeImages()
        {
            lock (Images)
                for (int i = 0; i < Images.Length; i++) { Images[i]?.Dispose(); Images[i] = null; }
        }
    }
}
