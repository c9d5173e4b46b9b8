using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using RetinaNet.Training;
using Xunit;

namespace RetinaNet.Tests.Training;

public class MetricsPosterTests
{
    static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    // The poster's default timeout (2 s) is the product's; these tests give it and the server more, and run the server
    // on a thread of its own: with training tests filling the thread pool on 2 cores, a pooled server got the request
    // after the client had given up (seen once, locally)
    static readonly TimeSpan LoadedMachine = TimeSpan.FromSeconds(30);

    static Task Serve(Action serve) => Task.Factory.StartNew(serve, TaskCreationOptions.LongRunning);

    [Fact]
    public async Task Posts_one_json_body_per_metric()
    {
        int port = FreePort();
        var prefix = $"http://127.0.0.1:{port}/metrics/";
        using var listener = new HttpListener();
        listener.Prefixes.Add(prefix);
        listener.Start();
        var received = new List<(string Method, string? ContentType, string Body)>();
        var server = Serve(() =>
        {
            for (int i = 0; i < 4; i++)
            {
                var ctx = listener.GetContext();
                using var reader = new StreamReader(ctx.Request.InputStream);
                received.Add((ctx.Request.HttpMethod, ctx.Request.ContentType, reader.ReadToEnd()));
                ctx.Response.StatusCode = 200;
                ctx.Response.Close();
            }
        });

        using var poster = new MetricsPoster(new Uri(prefix), LoadedMachine,
            clockNs: () => 1_700_000_000_123_456_789L);
        var warnings = await poster.PostAsync(MetricsPoster.TrainingMetrics(0.123, 0.0456, 87.5, 0.01));
        Assert.Empty(warnings);
        await server.WaitAsync(LoadedMachine);

        Assert.Equal(4, received.Count);
        string[] names = ["focal loss", "box loss", "im_s", "lr"];
        double[] values = [0.123, 0.0456, 87.5, 0.01];
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal("POST", received[i].Method);
            Assert.StartsWith("application/json", received[i].ContentType);
            using var doc = JsonDocument.Parse(received[i].Body);
            var root = doc.RootElement;
            Assert.Equal(3, root.EnumerateObject().Count());
            Assert.Equal(1_700_000_000_123_456_789L, root.GetProperty("time").GetInt64());
            Assert.Equal(names[i], root.GetProperty("metric").GetString());
            Assert.Equal(values[i], root.GetProperty("value").GetDouble());
        }
    }

    [Fact]
    public async Task Unreachable_url_gives_a_warning_not_an_exception()
    {
        int port = FreePort(); // nothing listens there now
        using var poster = new MetricsPoster(new Uri($"http://127.0.0.1:{port}/"), TimeSpan.FromSeconds(2));
        var warnings = await poster.PostAsync([("focal loss", 1.0), ("lr", 0.01)]);
        Assert.Equal(2, warnings.Count);
        Assert.All(warnings, w => Assert.StartsWith("warning: posting metric", w));
        Assert.Contains("'focal loss'", warnings[0]);
    }

    [Fact]
    public async Task Error_status_gives_a_warning()
    {
        int port = FreePort();
        var prefix = $"http://127.0.0.1:{port}/";
        using var listener = new HttpListener();
        listener.Prefixes.Add(prefix);
        listener.Start();
        var server = Serve(() =>
        {
            var ctx = listener.GetContext();
            ctx.Response.StatusCode = 500;
            ctx.Response.Close();
        });
        using var poster = new MetricsPoster(new Uri(prefix), LoadedMachine);
        var warnings = await poster.PostAsync([("lr", 0.01)]);
        await server.WaitAsync(LoadedMachine);
        Assert.Contains("HTTP 500", Assert.Single(warnings));
    }

    [Fact]
    public void Non_finite_values_are_sent_as_null()
    {
        using var doc = JsonDocument.Parse(MetricsPoster.Json(5, "focal loss", double.NaN));
        Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("value").ValueKind);
    }
}
