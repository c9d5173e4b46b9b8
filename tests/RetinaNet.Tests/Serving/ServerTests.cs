using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using RetinaNet.Checkpoints;
using RetinaNet.Data.Imaging;
using RetinaNet.Data.Synthetic;
using RetinaNet.Model;
using RetinaNet.Serving;
using Xunit;

namespace RetinaNet.Tests.Serving;

/// <summary><see cref="DetectionServer"/> on loopback (port 0) with a randomly initialised model at 64 px and score
/// threshold 0 (so every answer carries detections): answers against the <see cref="Detector"/> itself, batching,
/// limits, malformed bodies, overload and a bounded load. Every count and duration is bounded.</summary>
public sealed class ServerTests
{
    static readonly Lazy<string> Model = new(() =>
    {
        var path = Path.Combine(Paths.TempDir(), "m.pth");
        using var m = new RetinaNetModel(new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 3 });
        m.Initialize(0);
        Checkpoint.Save(path, m);
        return path;
    });

    internal static Detector Load(int batch = 8) => Detector.Load(Model.Value, new DetectorOptions
    {
        Device = "cpu", Batch = batch, ScoreThreshold = 0, Resize = 64, MaxSize = 64, MaxDetections = 20,
    });

    internal static byte[] Png(int seed, int size = 64)
    {
        var (_, images) = ShapesDataset.Generate(1, size, seed, "x.json");
        var dir = Paths.TempDir();
        var path = Path.Combine(dir, "i.png");
        ImageEncoder.SavePng(images[0].Image, path);
        return File.ReadAllBytes(path);
    }

    internal static async Task<(DetectionServer Server, HttpClient Client)> Start(Detector detector,
        ServeOptions? options = null)
    {
        var server = await DetectionServer.StartAsync(detector, (options ?? new ServeOptions()) with { Port = 0 });
        var client = new HttpClient { BaseAddress = new Uri(server.Urls[0]), Timeout = TimeSpan.FromSeconds(60) };
        var clock = Stopwatch.StartNew();
        while ((await client.GetAsync("/readyz")).StatusCode != HttpStatusCode.OK)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), "not ready within 60 s");
            await Task.Delay(20);
        }
        return (server, client);
    }

    internal static ByteArrayContent Image(byte[] data, string type = "image/png")
    {
        var content = new ByteArrayContent(data);
        content.Headers.ContentType = new MediaTypeHeaderValue(type);
        return content;
    }

    static List<(long Category, string Name, float Score, float[] Box)> Parse(JsonElement image) =>
        image.GetProperty("detections").EnumerateArray().Select(d => (d.GetProperty("category_id").GetInt64(),
            d.GetProperty("name").GetString()!, d.GetProperty("score").GetSingle(),
            d.GetProperty("box").EnumerateArray().Select(v => v.GetSingle()).ToArray())).ToList();

    static void SameDetections(IEnumerable<Detection> expected,
        List<(long Category, string Name, float Score, float[] Box)> got)
    {
        var want = expected.ToList();
        Assert.Equal(want.Count, got.Count);
        for (int i = 0; i < want.Count; i++)
        {
            Assert.Equal(want[i].CategoryId, got[i].Category);
            Assert.Equal(want[i].Name, got[i].Name);
            // another batch composition may change the last bits on the CPU
            Assert.True(Math.Abs(want[i].Score - got[i].Score) < 1e-4, $"score {got[i].Score} vs {want[i].Score}");
            float[] box = [want[i].X, want[i].Y, want[i].Width, want[i].Height];
            for (int k = 0; k < 4; k++)
                Assert.True(Math.Abs(box[k] - got[i].Box[k]) < 1e-2,
                    $"box {string.Join(',', got[i].Box)} vs {string.Join(',', box)}");
        }
    }

    [Fact]
    public async Task AModelThatFailsItsWarmUpSaysSoOnReadyz()
    {
        var detector = Load();
        detector.Dispose(); // its model thread is gone: every call fails
        await using var server = await DetectionServer.StartAsync(detector, new ServeOptions { Port = 0 });
        await Assert.ThrowsAnyAsync<Exception>(() => server.WarmUp);
        using var client = new HttpClient { BaseAddress = new Uri(server.Urls[0]) };
        var ready = await client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        Assert.StartsWith("the model failed its warm-up call: ", await ready.Content.ReadAsStringAsync());
        Assert.False(server.Ready);
    }

    [Fact]
    public async Task AnswersAreTheDetectorsDetectionsFilteredAsAsked()
    {
        using var detector = Load();
        var (server, client) = await Start(detector);
        await using var _ = server;
        var images = new[] { Png(1), Png(2, 80), Png(3, 48) };
        var reference = images.Select(i => detector.Detect(i).OrderByDescending(d => d.Score).ToList()).ToArray();
        Assert.All(reference, r => Assert.NotEmpty(r));

        using var one = JsonDocument.Parse(
            await (await client.PostAsync("/v1/detect", Image(images[1]))).Content.ReadAsStringAsync());
        Assert.Equal(80, one.RootElement.GetProperty("width").GetInt32());
        SameDetections(reference[1], Parse(one.RootElement));

        // filters: by hand on the reference list
        double threshold = reference[0][reference[0].Count / 2].Score;
        var filtered = await client.PostAsync($"/v1/detect?score_threshold={threshold:R}&max_detections=3",
            Image(images[0]));
        using var f = JsonDocument.Parse(await filtered.Content.ReadAsStringAsync());
        SameDetections(reference[0].Where(d => d.Score >= threshold).Take(3), Parse(f.RootElement));

        // a multipart batch: one result per file, in order, named
        using var form = new MultipartFormDataContent();
        for (int i = 0; i < images.Length; i++) form.Add(Image(images[i]), "image", $"f{i}.png");
        var batch = await client.PostAsync("/v1/detect/batch", form);
        Assert.Equal(HttpStatusCode.OK, batch.StatusCode);
        using var b = JsonDocument.Parse(await batch.Content.ReadAsStringAsync());
        var results = b.RootElement.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(3, results.Count);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal($"f{i}.png", results[i].GetProperty("file").GetString());
            SameDetections(reference[i], Parse(results[i]));
        }
    }

    [Fact]
    public async Task ConcurrentRequestsShareModelCallsAndMetricsCountThem()
    {
        using var detector = Load();
        var (server, client) = await Start(detector,
            new ServeOptions { MaxBatch = 8, MaxDelay = TimeSpan.FromMilliseconds(200) });
        await using var _ = server;
        var image = Png(4);
        var answers = await Task.WhenAll(
            Enumerable.Range(0, 16).Select(_ => client.PostAsync("/v1/detect", Image(image))));
        Assert.All(answers, a => Assert.Equal(HttpStatusCode.OK, a.StatusCode));

        var metrics = await client.GetStringAsync("/metrics");
        double Value(string series) =>
            double.Parse(metrics.Split('\n').Single(l => l.StartsWith(series + " ")).Split(' ')[1],
            System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(16, Value("retinanet_batch_size_sum"));
        Assert.True(Value("retinanet_batch_size_count") <= 8,
            $"16 concurrent requests took {Value("retinanet_batch_size_count")} model calls");
        Assert.Equal(16, Value("retinanet_requests_total{endpoint=\"/v1/detect\",code=\"200\"}"));
        Assert.Contains("retinanet_queue_length 0", metrics);
        Assert.Contains("retinanet_request_duration_seconds_bucket{endpoint=\"/v1/detect\",le=\"+Inf\"} 16", metrics);

        Assert.Equal("ok\n", await client.GetStringAsync("/healthz"));
        using var openApi = JsonDocument.Parse(await client.GetStringAsync("/openapi/v1.json"));
        var paths = openApi.RootElement.GetProperty("paths");
        foreach (var p in new[] { "/v1/detect", "/v1/detect/batch", "/healthz", "/readyz", "/metrics" })
            Assert.True(paths.TryGetProperty(p, out var _), $"the OpenAPI document lacks {p}");
        var page = await client.GetStringAsync("/");
        Assert.Contains("/v1/detect", page);
    }

    /// <summary>A BMP header that claims <paramref name="width"/> x <paramref name="height"/> 24-bit pixels and
    /// carries none: what a decompression bomb's header looks like.</summary>
    static byte[] BmpHeader(int width, int height)
    {
        var b = new byte[54];
        b[0] = (byte)'B'; b[1] = (byte)'M';
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(2), 54 + width * 3 * height);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(10), 54);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(14), 40);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(18), width);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(22), height);
        BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(26), 1);
        BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(28), 24);
        return b;
    }

    [Fact]
    public async Task AThousandMalformedRequestsAreEachAnswered4xxAndTheServerStaysHealthy()
    {
        using var detector = Load();
        var (server, client) = await Start(detector,
            new ServeOptions { MaxBodyBytes = 256 << 10, MaxPixels = 1_000_000 });
        await using var _ = server;
        var good = Png(5);
        var random = new Random(5);
        // named cases, with the exact status each must get
        var cases = new List<(string Name, Func<HttpContent> Body, string Query, HttpStatusCode Status)>
        {
            ("empty", () => Image([]), "", HttpStatusCode.UnsupportedMediaType),
            ("text type", () => new StringContent("hello"), "", HttpStatusCode.UnsupportedMediaType),
            ("huge dimensions", () => Image(BmpHeader(30000, 30000), "image/bmp"), "",
                HttpStatusCode.RequestEntityTooLarge),
            ("body over the limit", () => Image([.. good, .. new byte[300 << 10]]), "",
                HttpStatusCode.RequestEntityTooLarge),
            ("bad threshold", () => Image(good), "?score_threshold=2", HttpStatusCode.BadRequest),
            ("bad max", () => Image(good), "?max_detections=-1", HttpStatusCode.BadRequest),
            ("form without file", () => new MultipartFormDataContent { { new StringContent("x"), "field" } }, "",
                HttpStatusCode.BadRequest),
        };
        foreach (var (name, body, query, status) in cases)
        {
            var answer = await client.PostAsync("/v1/detect" + query, body());
            Assert.True(answer.StatusCode == status,
                $"{name}: {answer.StatusCode}, expected {status}: {await answer.Content.ReadAsStringAsync()}");
            var text = await answer.Content.ReadAsStringAsync();
            Assert.True(text.StartsWith("{\"error\":\""), $"{name}: answered '{text}'");
        }
        // then random damage: truncated images, flipped bytes, random bytes, real headers before junk
        for (int i = 0; i < 1000 - cases.Count; i++)
        {
            byte[] body = (i % 4) switch
            {
                0 => good[..random.Next(1, good.Length - 1)],
                1 => Flip(good, random),
                2 => RandomBytes(random, random.Next(1, 4096)),
                _ => [.. good[..random.Next(8, 64)], .. RandomBytes(random, random.Next(1, 2048))],
            };
            var answer = await client.PostAsync("/v1/detect", Image(body));
            int code = (int)answer.StatusCode;
            // a flip that leaves the image decodable is a valid request
            Assert.True(code is >= 400 and < 500 || (i % 4 == 1 && code == 200),
                $"case {i} (kind {i % 4}): {code} {await answer.Content.ReadAsStringAsync()}");
        }
        Assert.Equal("ok\n", await client.GetStringAsync("/healthz"));
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/v1/detect", Image(good))).StatusCode);
    }

    static byte[] Flip(byte[] data, Random random)
    {
        var copy = data.ToArray();
        for (int k = 0; k < 8; k++) copy[random.Next(8, copy.Length)] ^= (byte)random.Next(1, 256);
        return copy;
    }

    static byte[] RandomBytes(Random random, int n)
    {
        var b = new byte[n];
        random.NextBytes(b);
        return b;
    }

    [Fact]
    public async Task OverloadIsAnswered503WithRetryAfterNeverAHang()
    {
        using var detector = Load(batch: 1);
        var (server, client) = await Start(detector,
            new ServeOptions { MaxBatch = 1, QueueCapacity = 2, MaxDelay = TimeSpan.Zero });
        await using var _ = server;
        var image = Png(6, 64);
        var clock = Stopwatch.StartNew();
        var answers = await Task.WhenAll(
            Enumerable.Range(0, 48).Select(_ => client.PostAsync("/v1/detect", Image(image))));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"48 requests took {clock.Elapsed}");
        var busy = answers.Where(a => a.StatusCode == HttpStatusCode.ServiceUnavailable).ToList();
        Assert.NotEmpty(busy);
        Assert.All(busy, a => Assert.Equal("1", a.Headers.GetValues("Retry-After").Single()));
        Assert.All(answers, a =>
            Assert.True(a.StatusCode is HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable, $"{a.StatusCode}"));
        Assert.Contains(answers, a => a.StatusCode == HttpStatusCode.OK);
        // and it recovers
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/v1/detect", Image(image))).StatusCode);
    }

    /// <summary>Stopping while a request waits for its batch: that request still gets its detections, and the server
    /// then refuses connections.</summary>
    [Fact]
    public async Task StopFinishesTheRequestsInFlight()
    {
        using var detector = Load();
        var (server, client) = await Start(detector,
            new ServeOptions { MaxBatch = 8, MaxDelay = TimeSpan.FromMilliseconds(800) });
        var inFlight = client.PostAsync("/v1/detect", Image(Png(8)));
        await Task.Delay(200); // queued, waiting for others to share its batch
        var stopping = server.StopAsync();
        var answer = await inFlight;
        await stopping;
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.NotEmpty(Parse(JsonDocument.Parse(await answer.Content.ReadAsStringAsync()).RootElement));
        await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync("/healthz"));
        await server.DisposeAsync();
    }
}

/// <summary>The load test runs alone (the serial collection): the working set it measures is the whole process's, which
/// tests running beside it would move by gigabytes.</summary>
[Collection("global torch RNG")]
public sealed class ServerLoadTests
{
    /// <summary>2,000 requests in the suite (a 2-core CI machine serves ~25 a second at 48 px); RETINANET_LOAD_REQUESTS
    /// sets another count (10,000 in bench/RESULTS.md, "retinanet serve").</summary>
    [Fact]
    public async Task ManyRequestsFromEightClientsWithoutErrorsOrMemoryGrowth()
    {
        int requests = int.TryParse(Environment.GetEnvironmentVariable("RETINANET_LOAD_REQUESTS"), out var n)
            ? n : 2000;
        using var detector = ServerTests.Load();
        var (server, client) = await ServerTests.Start(detector,
            new ServeOptions { MaxBatch = 8, MaxDelay = TimeSpan.FromMilliseconds(2) });
        await using var _ = server;
        var image = ServerTests.Png(7, 48);
        async Task<int> Clients(int total)
        {
            int errors = 0, next = 0;
            await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
            {
                while (Interlocked.Increment(ref next) <= total)
                {
                    var answer = await client.PostAsync("/v1/detect", ServerTests.Image(image));
                    if (answer.StatusCode != HttpStatusCode.OK) Interlocked.Increment(ref errors);
                    await answer.Content.ReadAsByteArrayAsync();
                }
            }));
            return errors;
        }
        Assert.Equal(0, await Clients(200)); // warm: pools, JIT, allocator
        long start = WorkingSet();
        var clock = Stopwatch.StartNew();
        Assert.Equal(0, await Clients(requests));
        long end = WorkingSet();
        File.AppendAllText(Path.Combine(Path.GetTempPath(), "retinanet-serve-load.txt"),
            $"{DateTime.UtcNow:u} {requests} requests in {clock.Elapsed.TotalSeconds:F1} s, " +
            $"working set {start >> 20} -> {end >> 20} MB\n");
        Assert.True(end - start < 100L << 20,
            $"working set grew from {start >> 20} MB to {end >> 20} MB over {requests} requests ({clock.Elapsed})");
    }

    static long WorkingSet()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var self = Process.GetCurrentProcess();
        return self.WorkingSet64;
    }
}
