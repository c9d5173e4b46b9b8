using RetinaNet.Data.Loading;
using RetinaNet.Model;

namespace RetinaNet.Inference;

/// <summary>What runs a batch of images to detections: TorchSharp's <see cref="DetectionRunner"/> or an exported model
/// through ONNX Runtime (<see cref="Onnx.OnnxDetector"/>). Both take the loader's host batches and return detections
/// in original image coordinates (<see cref="DetectionMapping"/>).</summary>
public interface IDetector : IDisposable
{
    /// <summary>Classes the detector predicts.</summary>
    int Classes { get; }
    /// <summary>Fixed input (height, width) that every batch is padded to (exported models); null: any multiple of
    /// 128.</summary>
    (int Height, int Width)? InputSize { get; }
    /// <summary>The training annotations' categories in class order; empty when the model does not know
    /// them.</summary>
    IReadOnlyList<Category> Categories { get; }
    /// <summary>The input scale and post-processing this detector runs with.</summary>
    InferenceConfig Settings { get; }
    /// <summary>Rotated boxes (ODTK's <c>--rotated-bbox</c>): detections carry angles, evaluation compares
    /// polygons.</summary>
    bool Rotated => false;
    IReadOnlyList<ImageDetections> Detect(HostBatch host);

    /// <summary>Starts <paramref name="host"/>'s detection and returns before its results reach the host where the
    /// detector can (a GPU: the next batch is queued while this one runs); the batch stays alive until
    /// <see cref="PendingDetections.Collect"/>, which runs on the same thread, as every call to one detector. By
    /// default the detection runs here, whole.</summary>
    PendingDetections Submit(HostBatch host) => PendingDetections.Ready(Detect(host));
}

/// <summary>A batch's detections on their way to the host (<see cref="IDetector.Submit"/>).</summary>
public sealed class PendingDetections(Func<IReadOnlyList<ImageDetections>> collect, IDisposable? owned = null)
    : IDisposable
{
    public static PendingDetections Ready(IReadOnlyList<ImageDetections> detections) => new(() => detections);

    /// <summary>Waits for the batch's detections (in original coordinates, padding dropped).</summary>
    public IReadOnlyList<ImageDetections> Collect() => collect();

    public void Dispose() => owned?.Dispose();
}

public static class DetectorExtensions
{
    /// <summary>Every image of the loader's batches, in order. With <paramref name="inFlight"/> above 1 that many
    /// batches are submitted before the first one's results are awaited, so the device is not idle while the host
    /// maps results and the loader hands over the next batch.</summary>
    public static IEnumerable<ImageDetections> Run(this IDetector detector, PrefetchingLoader loader, int inFlight = 1)
        => detector.Run(loader.Next, inFlight);

    /// <summary>As above over the batches <paramref name="next"/> hands out until it returns null; each batch is
    /// disposed once its detections are collected.</summary>
    public static IEnumerable<ImageDetections> Run(this IDetector detector, Func<HostBatch?> next, int inFlight)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(inFlight, 1);
        var queue = new Queue<(HostBatch Host, PendingDetections Pending)>();
        bool exhausted = false;
        try
        {
            while (true)
            {
                while (!exhausted && queue.Count < inFlight)
                {
                    if (next() is not HostBatch host) { exhausted = true; break; }
                    // one at a time: the direct call, as before batches could be in flight
                    try { queue.Enqueue((host, inFlight == 1 ? PendingDetections.Ready(detector.Detect(host))
                        : detector.Submit(host))); }
                    catch { host.Dispose(); throw; }
                }
                if (queue.Count == 0) yield break;
                var (done, pending) = queue.Dequeue();
                IReadOnlyList<ImageDetections> detections;
                using (done)
                using (pending)
                    detections = pending.Collect();
                foreach (var d in detections) yield return d;
            }
        }
        finally
        {
            // an abandoned enumeration or a failure: what is still queued is released
            foreach (var (host, pending) in queue) { pending.Dispose(); host.Dispose(); }
        }
    }
}
