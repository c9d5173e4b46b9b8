using Prometheus;

namespace RetinaNet.Serving;

/// <summary>The server's Prometheus metrics, in a registry of its own (two servers in one process keep
/// apart).</summary>
public sealed class ServerMetrics
{
    readonly CollectorRegistry registry = Metrics.NewCustomRegistry();
    readonly Counter requests;
    readonly Histogram latency, batchSizes;
    readonly Counter images;

    public ServerMetrics(int maxBatch, Func<int> queueLength)
    {
        var factory = Metrics.WithCustomRegistry(registry);
        requests = factory.CreateCounter("retinanet_requests_total",
            "HTTP requests answered, by endpoint and status code",
            new CounterConfiguration { LabelNames = ["endpoint", "code"] });
        latency = factory.CreateHistogram("retinanet_request_duration_seconds",
            "Time from request to answer, by endpoint",
            new HistogramConfiguration { LabelNames = ["endpoint"],
                Buckets = Histogram.ExponentialBuckets(0.001, 2, 16) });
        batchSizes = factory.CreateHistogram("retinanet_batch_size", "Images per model call",
            new HistogramConfiguration { Buckets = Histogram.LinearBuckets(1, 1, Math.Max(1, maxBatch)) });
        images = factory.CreateCounter("retinanet_images_total", "Images run through the model");
        var queue = factory.CreateGauge("retinanet_queue_length", "Images waiting for the model");
        registry.AddBeforeCollectCallback(() => queue.Set(queueLength()));
    }

    public void Answered(string endpoint, int code, TimeSpan elapsed)
    {
        requests.WithLabels(endpoint, code.ToString(System.Globalization.CultureInfo.InvariantCulture)).Inc();
        latency.WithLabels(endpoint).Observe(elapsed.TotalSeconds);
    }

    public void Batch(int size)
    {
        batchSizes.Observe(size);
        images.Inc(size);
    }

    /// <summary>Writes every metric in Prometheus' text exposition format.</summary>
    public Task WriteAsync(Stream output, CancellationToken cancel)
        => registry.CollectAndExportAsTextAsync(output, cancel);
}
