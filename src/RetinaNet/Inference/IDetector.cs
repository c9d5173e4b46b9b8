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
}

public static class DetectorExtensions
{
    /// <summary>Every image of the loader's batches, in order.</summary>
    public static IEnumerable<ImageDetections> Run(this IDetector detector, PrefetchingLoader loader)
    {
        while (loader.Next() is HostBatch host)
            using (host)
                foreach (var detections in detector.Detect(host)) yield return detections;
    }
}
