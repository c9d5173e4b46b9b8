using System.Text;
using System.Text.Json;

namespace RetinaNet.Training;

/// <summary>ODTK's <c>--post-metrics URL</c>: after a log line, one POST per metric. ODTK form-encodes
/// {time: int(now ns), metric, value}; here the same fields go as a JSON body
/// <c>{"time": ns, "metric": "focal loss", "value": 0.123}</c> (Content-Type application/json). Failures (network,
/// timeout, non-success status) come back as warning strings; nothing throws. A non-finite value is sent as null
/// (JSON has no NaN).</summary>
public sealed class MetricsPoster : IDisposable
{
    public const string FocalLoss = "focal loss", BoxLoss = "box loss", ImagesPerSecond = "im_s", LearningRate = "lr";

    readonly HttpClient client;
    readonly Func<long> clockNs;

    public Uri Url { get; }

    /// <param name="timeout">Per request; default 2 s.</param>
    /// <param name="clockNs">Unix time in nanoseconds (tests); defaults to the system clock.</param>
    public MetricsPoster(Uri url, TimeSpan? timeout = null, Func<long>? clockNs = null,
        HttpMessageHandler? handler = null)
    {
        Url = url;
        client = handler is null ? new HttpClient() : new HttpClient(handler);
        client.Timeout = timeout ?? TimeSpan.FromSeconds(2);
        this.clockNs = clockNs ?? (() => (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).Ticks * 100L);
    }

    /// <summary>ODTK's training metrics, in its order: focal loss, box loss, im_s, lr.</summary>
    public static IReadOnlyList<(string Metric, double Value)> TrainingMetrics(double focalLoss, double boxLoss,
        double imagesPerSecond, double learningRate)
        => [(FocalLoss, focalLoss), (BoxLoss, boxLoss), (ImagesPerSecond, imagesPerSecond),
        (LearningRate, learningRate)];

    /// <summary>The JSON body for one metric.</summary>
    public static string Json(long timeNs, string metric, double value)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("time", timeNs);
            w.WriteString("metric", metric);
            if (double.IsFinite(value)) w.WriteNumber("value", value);
            else w.WriteNull("value");
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>POSTs each metric (one request each, all stamped with the same time); returns the warnings, empty when
    /// all succeeded.</summary>
    public async Task<IReadOnlyList<string>> PostAsync(IEnumerable<(string Metric, double Value)> metrics,
        CancellationToken cancel = default)
    {
        long time = clockNs();
        var warnings = new List<string>();
        foreach (var (metric, value) in metrics)
        {
            var warning = await PostOneAsync(time, metric, value, cancel).ConfigureAwait(false);
            if (warning is not null) warnings.Add(warning);
        }
        return warnings;
    }

    /// <summary>Blocking form for the training loop.</summary>
    public IReadOnlyList<string> Post(IEnumerable<(string Metric, double Value)> metrics)
        => PostAsync(metrics).GetAwaiter().GetResult();

    async Task<string?> PostOneAsync(long time, string metric, double value, CancellationToken cancel)
    {
        try
        {
            using var content = new StringContent(Json(time, metric, value), Encoding.UTF8, "application/json");
            using var response = await client.PostAsync(Url, content, cancel).ConfigureAwait(false);
            return response.IsSuccessStatusCode ? null
                : $"warning: posting metric '{metric}' to {Url} failed: HTTP {(int)response.StatusCode} "
                + $"{response.ReasonPhrase}";
        }
        catch (Exception e)
            when (e is HttpRequestException or TaskCanceledException or OperationCanceledException or IOException
            or InvalidOperationException)
        {
            string why = e is TaskCanceledException && !cancel.IsCancellationRequested
                ? $"no answer within {client.Timeout.TotalSeconds:0.###} s" : e.Message;
            return $"warning: posting metric '{metric}' to {Url} failed: {why}";
        }
    }

    public void Dispose() => client.Dispose();
}
