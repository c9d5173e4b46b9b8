using System.Collections.Concurrent;

namespace RetinaNet.Inference;

/// <summary>One thread that runs queued work in order: what a model shared by several callers runs on, so thread-local
/// state (libtorch's thread settings, autocast, dispose scopes) is always the same one.</summary>
public sealed class ModelThread
{
    readonly BlockingCollection<Action> work = new();
    readonly Thread thread;

    public ModelThread(string name)
    {
        thread = new Thread(() => { foreach (var item in work.GetConsumingEnumerable()) item(); })
        {
            IsBackground = true, Name = name,
        };
        thread.Start();
    }

    /// <summary>Runs <paramref name="job"/> on the thread and waits for it; its exception is rethrown here.</summary>
    public T Run<T>(Func<T> job) =>
        Thread.CurrentThread == thread ? job() : RunAsync(job).GetAwaiter().GetResult();

    public Task<T> RunAsync<T>(Func<T> job)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            work.Add(() =>
            {
                try { done.SetResult(job()); }
                catch (Exception e) { done.SetException(e); }
            });
        }
        catch (InvalidOperationException) // adding was completed
        {
            throw new ObjectDisposedException(thread.Name);
        }
        return done.Task;
    }

    /// <summary>Runs the work queued so far, then <paramref name="last"/>, and ends the thread. Later calls throw
    /// <see cref="ObjectDisposedException"/>; a second stop does nothing.</summary>
    public void Stop(Action last)
    {
        lock (work)
        {
            if (work.IsAddingCompleted) return;
            var final = RunAsync(() => { last(); return true; });
            work.CompleteAdding();
            final.GetAwaiter().GetResult();
        }
        thread.Join();
    }
}
