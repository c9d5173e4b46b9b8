using System.Runtime.InteropServices;
using RetinaNet.Inference;
using RetinaNet.Serving;
using static RetinaNet.Cli.Validation;

namespace RetinaNet.Cli;

/// <summary><c>retinanet serve</c> (ours): the model behind <see cref="DetectionServer"/> until Ctrl-C or SIGTERM,
/// which finish the requests in flight first.</summary>
static class ServeCommand
{
    public static int Run(ParsedArgs a, CommandContext context)
    {
        var model = a.Positionals["model"];
        ModelArgument.Check(model, [.. ModelFiles.CheckpointExtensions, .. ModelFiles.ExportedExtensions]);
        var options = new ServeOptions
        {
            Host = a.String("--host")!, Port = a.Int("--port"), MaxBatch = Positive(a, "--max-batch"),
            MaxDelay = TimeSpan.FromMilliseconds(NonNegativeDouble(a, "--max-delay-ms")),
                QueueCapacity = Positive(a, "--queue"),
            MaxBodyBytes = (long)(PositiveDouble(a, "--max-body-mb") * (1 << 20)),
                MaxPixels = Positive(a, "--max-pixels"),
            RequestTimeout = TimeSpan.FromSeconds(PositiveDouble(a, "--timeout")),
        };
        if (options.Host != "localhost" && !System.Net.IPAddress.TryParse(options.Host, out _))
            throw new UsageException($"--host: '{options.Host}' is not an IP address (127.0.0.1, 0.0.0.0, ::1) or "
                + "localhost");
        try { options.Validate(); }
        catch (ArgumentException e) { throw new UsageException(e.Message); }
        DeviceChoice.Resolve(a.String("--device"));
        InferenceSettings(a); // the post-processing and input size given, checked as infer checks them
        using var detector = Detector.Load(ModelArgument.Local(model, context.Stderr),
            DetectorArgs.From(a, options.MaxBatch));
        return Serve(detector, options, context.Stdout).GetAwaiter().GetResult();
    }

    static async Task<int> Serve(Detector detector, ServeOptions options, TextWriter stdout)
    {
        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true;
            stopped.TrySetResult(); });
        using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true;
            stopped.TrySetResult(); });
        await using var server = await DetectionServer.StartAsync(detector, options);
        var names = string.Join(", ", detector.Categories.Take(8).Select(c => c.Name))
            + (detector.Classes > 8 ? ", ..." : "");
        stdout.WriteLine($"Serving {detector.Classes} classes ({names}) on {string.Join(", ", server.Urls)} " +
            $"(batches of up to {options.MaxBatch}, {options.MaxDelay.TotalMilliseconds:0.###} ms to fill one); Ctrl-C "
                + "stops");
        stdout.Flush();
        // a model that cannot run (its warm-up call failed) ends the server: a health check would only ever see 503
        var warmUpFailed = new TaskCompletionSource();
        _ = server.WarmUp.ContinueWith(t => { if (t.IsFaulted) warmUpFailed.TrySetResult(); }, TaskScheduler.Default);
        await Task.WhenAny(stopped.Task, warmUpFailed.Task);
        if (server.WarmUp.IsFaulted)
            throw new InvalidDataException("the model failed its warm-up call, so the server stops: "
                + $"{server.WarmUp.Exception!.GetBaseException().Message}");
        stdout.WriteLine("Stopping: finishing the requests in flight"); // disposing the server stops it
        return CommandLine.Ok;
    }
}
