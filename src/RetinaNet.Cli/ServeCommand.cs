using System.Runtime.InteropServices;
using RetinaNet.Inference;
using RetinaNet.Serving;
using RetinaNet.Model;
using static RetinaNet.Cli.SharedOptions;
using static RetinaNet.Cli.Validation;

namespace RetinaNet.Cli;

/// <summary>serve's command line, read once; <see cref="Given"/>, the post-processing and input size given (they win
/// over the model's).</summary>
sealed record ServeArguments(string Model, string Host, int Port, int MaxBatch, double MaxDelayMs, int Queue,
    double MaxBodyMb, int MaxPixels, double Timeout, bool FullPrecision, string? Device, InferenceOverrides Given);

/// <summary><c>retinanet serve</c> (ours): the model behind <see cref="DetectionServer"/> until Ctrl-C or SIGTERM,
/// which finish the requests in flight first.</summary>
static class ServeCommand
{
    static readonly Option<string> Host = Option.String("--host", "address to listen on (0.0.0.0: every interface)",
        "address", "127.0.0.1");
    static readonly Option<int> Port = Option.Int("--port", "TCP port (0: any free one)", "port", 8080);
    static readonly Option<int> MaxBatch = Option.Int("--max-batch", "most images run as one model call", "size", 8);
    static readonly Option<double> MaxDelayMs = Option.Double("--max-delay-ms",
        "how long a request waits for others to share its batch", "ms", 5);
    static readonly Option<int> Queue = Option.Int("--queue",
        "images waiting beyond this are answered 503 with Retry-After", "images", 64);
    static readonly Option<double> MaxBodyMb = Option.Double("--max-body-mb", "largest request body", "MB", 32);
    static readonly Option<int> MaxPixels = Option.Int("--max-pixels",
        "largest image (width x height), checked before decoding", "pixels", 25_000_000);
    static readonly Option<double> Timeout = Option.Double("--timeout",
        "seconds a request may wait for its detections (then 504)", "seconds", 30);

    public static CommandSpec Spec() => new("serve",
        "(ours) Serve a model over HTTP: POST /v1/detect, a page at /, /metrics.",
        [("model", "path to model (.pth checkpoint, .safetensors, exported .onnx, .plan or .engine)")],
        [
            Host, Port, MaxBatch, MaxDelayMs, Queue, MaxBodyMb, MaxPixels, Timeout, FullPrecision,
            .. InputSize(ModelsSetting), .. Postprocessing(ModelsSetting), Device,
        ]);

    static ServeArguments Bind(ParsedArgs a) => new(a.Positionals["model"], a.Get(Host), a.Get(Port),
        a.Get(MaxBatch), a.Get(MaxDelayMs), a.Get(Queue), a.Get(MaxBodyMb), a.Get(MaxPixels), a.Get(Timeout),
        a.Get(FullPrecision), a.Get(Device), Overrides(a));

    public static int Run(ParsedArgs parsed, CommandContext context)
    {
        var a = Bind(parsed);
        var model = a.Model;
        ModelArgument.Check(model, [.. ModelFiles.CheckpointExtensions, .. ModelFiles.ExportedExtensions]);
        var options = new ServeOptions
        {
            Host = a.Host, Port = a.Port, MaxBatch = Positive(MaxBatch, a.MaxBatch),
            MaxDelay = TimeSpan.FromMilliseconds(NonNegativeDouble(MaxDelayMs, a.MaxDelayMs)),
                QueueCapacity = Positive(Queue, a.Queue),
            MaxBodyBytes = (long)(PositiveDouble(MaxBodyMb, a.MaxBodyMb) * (1 << 20)),
                MaxPixels = Positive(MaxPixels, a.MaxPixels),
            RequestTimeout = TimeSpan.FromSeconds(PositiveDouble(Timeout, a.Timeout)),
        };
        if (options.Host != "localhost" && !System.Net.IPAddress.TryParse(options.Host, out _))
            throw new UsageException($"{Host.Name}: '{options.Host}' is not an IP address (127.0.0.1, 0.0.0.0, ::1) "
                + "or localhost");
        try { options.Validate(); }
        catch (ArgumentException e) { throw new UsageException(e.Message); }
        DeviceChoice.Resolve(a.Device);
        InferenceSettings(a.Given); // the post-processing and input size given, checked as infer checks them
        using var detector = Detector.Load(ModelArgument.Local(model, context.Stderr),
            DetectorArgs.From(a.Device, a.FullPrecision, a.Given, options.MaxBatch));
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
