using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using RetinaNet.Data;
using RetinaNet.Data.Imaging;

namespace RetinaNet.Serving;

/// <summary>An HTTP detection server around a <see cref="Detector"/> (Kestrel): <c>POST /v1/detect</c>,
/// <c>POST /v1/detect/batch</c>, <c>GET /healthz</c>, <c>/readyz</c>, <c>/metrics</c>, <c>/openapi/v1.json</c> and a
/// page at <c>/</c>. Concurrent requests share model calls (<see cref="DetectionBatcher"/>). The caller owns the
/// detector.</summary>
public sealed class DetectionServer : IAsyncDisposable
{

    readonly WebApplication app;
    readonly DetectionBatcher batcher;
    readonly ServeOptions options;
    volatile bool ready;

    DetectionServer(WebApplication app, DetectionBatcher batcher, ServeOptions options) =>
        (this.app, this.batcher, this.options) = (app, batcher, options);

    /// <summary>Addresses the server listens on (the real port when <see cref="ServeOptions.Port"/> was 0).</summary>
    public IReadOnlyList<string> Urls =>
        app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.ToArray();

    /// <summary>Whether the model has answered its warm-up call (what <c>/readyz</c> says).</summary>
    public bool Ready => ready;

    /// <summary>The warm-up call; faulted when the model failed it (then <c>/readyz</c> says why, with 503).</summary>
    public Task WarmUp { get; private set; } = Task.CompletedTask;
    string? warmUpFailure;

    /// <summary>Starts listening, then warms the model up in the background (<c>/readyz</c> answers 503 until
    /// then).</summary>
    public static async Task<DetectionServer> StartAsync(Detector detector, ServeOptions options,
        CancellationToken cancel = default)
    {
        options.Validate();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders(); // the CLI prints what matters; Kestrel's per-request lines would drown it
        builder.Services.AddSingleton<IHostLifetime, NoSignalHandling>(); // the caller decides when to stop
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = options.ShutdownTimeout);
        builder.Services.ConfigureHttpJsonOptions(j => j.SerializerOptions.PropertyNamingPolicy =
            JsonNamingPolicy.SnakeCaseLower);
        builder.Services.Configure<FormOptions>(f => f.MultipartBodyLengthLimit = options.MaxBodyBytes);
        builder.Services.AddOpenApi();
        builder.WebHost.UseKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = options.MaxBodyBytes;
            if (options.Host is "localhost") k.ListenLocalhost(options.Port);
            else k.Listen(IPAddress.Parse(options.Host), options.Port);
        });
        var app = builder.Build();
        DetectionBatcher? batcher = null;
        var metrics = new ServerMetrics(options.MaxBatch, () => batcher?.QueueLength ?? 0);
        batcher = new DetectionBatcher(detector.Detect, options, metrics.Batch);
        var server = new DetectionServer(app, batcher, options);
        server.Map(metrics);
        await app.StartAsync(cancel).ConfigureAwait(false);
        server.WarmUp = Task.Run(() => server.WarmUpModel(detector), CancellationToken.None);
        return server;
    }

    void WarmUpModel(Detector detector)
    {
        try
        {
            detector.Detect([new RgbImage(64, 64, new byte[64 * 64 * 3])]);
            ready = true;
        }
        catch (Exception e)
        {
            warmUpFailure = e.Message;
            throw;
        }
    }

    void Map(ServerMetrics metrics)
    {
        app.Use(async (context, next) =>
        {
            var clock = Stopwatch.StartNew();
            await next(context).ConfigureAwait(false);
            var endpoint = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "other";
            metrics.Answered(endpoint, context.Response.StatusCode, clock.Elapsed);
        });
        // answers the framework gives without a body (routing's 404, 405, and 415 from the endpoints' accepted types)
        // get the JSON error every other answer has
        app.UseStatusCodePages(async status =>
        {
            var http = status.HttpContext;
            string message = http.Response.StatusCode switch
            {
                404 => $"no endpoint at {http.Request.Path}; see /openapi/v1.json",
                405 => $"{http.Request.Method} is not allowed at {http.Request.Path}; see /openapi/v1.json",
                415 => $"content type '{http.Request.ContentType}' is not accepted; send image/jpeg, image/png, "
                    + "image/bmp " +
                    "or a multipart form",
                int code => $"HTTP {code}",
            };
            await http.Response.WriteAsJsonAsync(new ErrorJson(message)).ConfigureAwait(false);
        });
        app.MapGet("/", () => Results.Content(Page.Html, "text/html; charset=utf-8")).ExcludeFromDescription();
        app.MapGet("/healthz", () => Results.Text("ok\n")).WithSummary("The process is up");
        app.MapGet("/readyz", () => ready ? Results.Text("ready\n")
            : Results.Text(warmUpFailure is null ? "warming up\n"
            : $"the model failed its warm-up call: {warmUpFailure}\n", statusCode: 503))
            .WithSummary("The model is loaded and has answered once");
        app.MapGet("/metrics", (Delegate)(async (HttpContext c) =>
        {
            var buffer = new MemoryStream(); // the exporter writes synchronously, which Kestrel forbids on its stream
            await metrics.WriteAsync(buffer, c.RequestAborted).ConfigureAwait(false);
            buffer.Position = 0;
            return Results.Stream(buffer, "text/plain; version=0.0.4; charset=utf-8");
        })).WithSummary("Prometheus metrics: requests, latency, batch sizes, queue length").Produces<string>(200,
            "text/plain");
        app.MapPost("/v1/detect", (Delegate)((HttpContext c) => Answer(c, single: true)))
            .WithSummary("Detect objects in one image (the body, or the first file of a multipart form)")
            .Accepts<byte[]>("image/jpeg", "image/png", "image/bmp", "application/octet-stream", "multipart/form-data")
            .Produces<ImageJson>().Produces<ErrorJson>(400).Produces<ErrorJson>(413).Produces<ErrorJson>(415)
            .Produces<ErrorJson>(503).Produces<ErrorJson>(504);
        app.MapPost("/v1/detect/batch", (Delegate)((HttpContext c) => Answer(c, single: false)))
            .WithSummary("Detect objects in each file of a multipart form")
            .Accepts<byte[]>("multipart/form-data")
            .Produces<BatchJson>().Produces<ErrorJson>(400).Produces<ErrorJson>(413).Produces<ErrorJson>(415)
            .Produces<ErrorJson>(503).Produces<ErrorJson>(504);
        app.MapOpenApi();
    }

    async Task<IResult> Answer(HttpContext context, bool single)
    {
        try
        {
            var (threshold, limit) = Filters(context.Request.Query);
            var uploads = await Uploads.ReadAsync(context.Request, single, options,
                context.RequestAborted).ConfigureAwait(false);
            var images = uploads.Select(u => Decode(u.Name, u.Data)).ToArray();
            var results = await Detect(images.Select(i => i.Image).ToArray(),
                context.RequestAborted).ConfigureAwait(false);
            var answers = images.Select((image, i) => new ImageJson(image.Name, image.Image.Width, image.Image.Height,
                Select(results[i], threshold, limit))).ToArray();
            return single ? Results.Json(answers[0] with { File = null }) : Results.Json(new BatchJson(answers));
        }
        catch (RequestException e)
        {
            if (e.Status == 503) context.Response.Headers.RetryAfter = "1";
            return Results.Json(new ErrorJson(e.Message), statusCode: e.Status);
        }
    }

    static (double Threshold, int? Limit) Filters(IQueryCollection query)
    {
        double threshold = 0;
        int? limit = null;
        if (query.TryGetValue("score_threshold", out var t) && (!double.TryParse(t, NumberStyles.Float,
            CultureInfo.InvariantCulture, out threshold) || threshold is < 0 or > 1 || double.IsNaN(threshold)))
            throw new RequestException(400, $"score_threshold must be a number in [0, 1], got '{t}'");
        if (query.TryGetValue("max_detections", out var m))
        {
            if (!int.TryParse(m, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed))
                throw new RequestException(400, $"max_detections must be a whole number >= 0, got '{m}'");
            limit = parsed;
        }
        return (threshold, limit);
    }

    (string? Name, RgbImage Image) Decode(string? name, byte[] data)
    {
        var label = name ?? "body";
        if (ImageDecoder.FormatOf(data) is null)
            throw new RequestException(415, data.Length == 0 ? $"{label}: empty; send a JPEG, PNG or BMP image"
                : $"{label}: not a JPEG, PNG or BMP image (by its first bytes); convert it first");
        try
        {
            var (format, width, height) = ImageDecoder.Probe(data, label);
            if ((long)width * height > options.MaxPixels)
                throw new RequestException(413,
                    $"{label}: {format} image of {width}x{height} pixels is more than this " +
                    $"server's {options.MaxPixels} pixels; send a smaller image");
            return (name, ImageDecoder.Decode(data, label));
        }
        catch (BadInputException e)
        {
            throw new RequestException(400,
                e.Message.Replace("; " + ImageDecoder.SkipHint, "; send the file again or re-export it"));
        }
    }

    async Task<IReadOnlyList<Detection>[]> Detect(RgbImage[] images, CancellationToken aborted)
    {
        using var abandon = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        var queued = new List<Task<IReadOnlyList<Detection>>>(images.Length);
        foreach (var image in images)
        {
            var task = batcher.TryEnqueue(image, abandon.Token);
            if (task is null)
            {
                abandon.Cancel(); // what this request already queued is dropped
                throw new RequestException(503,
                    $"the server is busy ({options.QueueCapacity} images queued); retry after 1 s");
            }
            queued.Add(task);
        }
        try
        {
            return await Task.WhenAll(queued).WaitAsync(options.RequestTimeout, aborted).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            abandon.Cancel();
            throw new RequestException(504,
                $"no detections within {options.RequestTimeout.TotalSeconds:0.###} s; retry later");
        }
    }

    IReadOnlyList<DetectionJson> Select(IReadOnlyList<Detection> detections, double threshold, int? limit) =>
        detections.Where(d => d.Score >= threshold).OrderByDescending(d => d.Score).Take(limit ?? int.MaxValue)
            .Select(d => new DetectionJson(d.CategoryId, d.Name, d.Score, [d.X, d.Y, d.Width, d.Height])).ToArray();

    /// <summary>Stops listening, finishes the requests in flight (up to <see cref="ServeOptions.ShutdownTimeout"/>),
    /// then the queued images.</summary>
    public async Task StopAsync()
    {
        await app.StopAsync().ConfigureAwait(false);
        await batcher.DisposeAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        await app.DisposeAsync().ConfigureAwait(false);
    }

    sealed class NoSignalHandling : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancel) => Task.CompletedTask;
        public Task StopAsync(CancellationToken cancel) => Task.CompletedTask;
    }
}
