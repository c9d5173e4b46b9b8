using System.Threading.Channels;
using RetinaNet.Data;

namespace RetinaNet.Serving;

/// <summary>Dynamic batching: images queued by concurrent requests run as one model call. The first image of a batch
/// waits at most <see cref="ServeOptions.MaxDelay"/> for others, up to <see cref="ServeOptions.MaxBatch"/>. The queue
/// is bounded: <see cref="TryEnqueue"/> refuses when it is full, which the server answers with 503.</summary>
public sealed class DetectionBatcher : IAsyncDisposable
{
    sealed record Pending(RgbImage Image, TaskCompletionSource<IReadOnlyList<Detection>> Result,
        CancellationToken Abandoned);

    readonly Func<IReadOnlyList<RgbImage>, IReadOnlyList<IReadOnlyList<Detection>>> detect;
    readonly ServeOptions options;
    readonly Channel<Pending> queue;
    readonly Task worker;
    int queued;

    /// <param name="detect">The model call (a <see cref="Detector"/>'s batch Detect).</param>
    /// <param name="onBatch">Called with each batch's size (metrics).</param>
    public DetectionBatcher(Func<IReadOnlyList<RgbImage>, IReadOnlyList<IReadOnlyList<Detection>>> detect,
        ServeOptions options, Action<int>? onBatch = null)
    {
        (this.detect, this.options) = (detect, options);
        queue = Channel.CreateBounded<Pending>(new BoundedChannelOptions(options.QueueCapacity)
        {
            SingleReader = true, FullMode = BoundedChannelFullMode.Wait,
        });
        worker = Task.Factory.StartNew(() => Work(onBatch), CancellationToken.None, TaskCreationOptions.LongRunning,
            TaskScheduler.Default).Unwrap();
    }

    /// <summary>Images waiting for the model now.</summary>
    public int QueueLength => Volatile.Read(ref queued);

    /// <summary>Queues one image; null when the queue is full (or closing). The task ends with its detections, or
    /// is cancelled if <paramref name="abandoned"/> fires before its batch starts.</summary>
    public Task<IReadOnlyList<Detection>>? TryEnqueue(RgbImage image, CancellationToken abandoned)
    {
        var pending = new Pending(image, new(TaskCreationOptions.RunContinuationsAsynchronously), abandoned);
        Interlocked.Increment(ref queued);
        if (queue.Writer.TryWrite(pending)) return pending.Result.Task;
        Interlocked.Decrement(ref queued);
        return null;
    }

    async Task Work(Action<int>? onBatch)
    {
        var reader = queue.Reader;
        var batch = new List<Pending>(options.MaxBatch);
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            if (!reader.TryRead(out var first)) continue;
            batch.Add(first);
            // collect more until the batch is full or the first image has waited MaxDelay
            using (var window = new CancellationTokenSource(options.MaxDelay))
            {
                while (batch.Count < options.MaxBatch)
                {
                    if (reader.TryRead(out var next)) { batch.Add(next); continue; }
                    try
                    {
                        if (!await reader.WaitToReadAsync(window.Token).ConfigureAwait(false)) break;
                    }
                    catch (OperationCanceledException) { break; }
                }
            }
            Interlocked.Add(ref queued, -batch.Count);
            Run(batch, onBatch);
        }
    }

    void Run(List<Pending> batch, Action<int>? onBatch)
    {
        var live = new List<Pending>(batch.Count);
        foreach (var p in batch)
        {
            if (p.Abandoned.IsCancellationRequested) p.Result.TrySetCanceled(p.Abandoned);
            else live.Add(p);
        }
        if (live.Count == 0) return;
        onBatch?.Invoke(live.Count);
        try
        {
            var results = detect(live.Select(p => p.Image).ToArray());
            for (int i = 0; i < live.Count; i++) live[i].Result.TrySetResult(results[i]);
        }
        catch (Exception e)
        {
            foreach (var p in live) p.Result.TrySetException(e);
        }
    }

    /// <summary>Refuses new images, runs those already queued, then returns.</summary>
    public async ValueTask DisposeAsync()
    {
        queue.Writer.TryComplete();
        await worker.ConfigureAwait(false);
    }
}
