namespace RetinaNet.Serving;

/// <summary>How <c>retinanet serve</c> listens, batches and protects itself. The defaults suit one GPU and a
/// trusted local network.</summary>
public sealed record ServeOptions
{
    /// <summary>Address to bind: loopback unless the operator opens it on purpose (0.0.0.0).</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>TCP port; 0 takes a free one (see <see cref="DetectionServer.Urls"/>).</summary>
    public int Port { get; init; } = 8080;
    /// <summary>Most images run as one model call.</summary>
    public int MaxBatch { get; init; } = 8;
    /// <summary>How long the first queued image waits for others to share its batch.</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromMilliseconds(5);
    /// <summary>Images waiting beyond this many are refused with 503 and Retry-After.</summary>
    public int QueueCapacity { get; init; } = 64;
    /// <summary>Largest request body (an image, or all images of a batch request).</summary>
    public long MaxBodyBytes { get; init; } = 32L << 20;
    /// <summary>Largest image, in pixels, checked from its header before decoding (a decoded image waits in the
    /// queue as 3 bytes a pixel: this times <see cref="QueueCapacity"/> bounds the queue's memory).</summary>
    public long MaxPixels { get; init; } = 25_000_000;
    /// <summary>Most images in one batch request.</summary>
    public int MaxImagesPerRequest { get; init; } = 32;
    /// <summary>A request still waiting for its detections after this is answered 504.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>How long shutdown waits for requests in flight.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Throws <see cref="ArgumentException"/> naming the first setting out of range.</summary>
    public void Validate()
    {
        static void Positive(string name, double value)
        {
            if (!(value > 0)) throw new ArgumentException($"{name} must be positive, got {value}");
        }
        if (Port is < 0 or > 65535) throw new ArgumentException($"port must be 0..65535, got {Port}");
        Positive("max batch", MaxBatch);
        if (MaxDelay < TimeSpan.Zero) throw new ArgumentException($"max delay must not be negative, got {MaxDelay}");
        Positive("queue capacity", QueueCapacity);
        Positive("max body bytes", MaxBodyBytes);
        Positive("max pixels", MaxPixels);
        Positive("max images per request", MaxImagesPerRequest);
        Positive("request timeout", RequestTimeout.TotalSeconds);
    }
}
