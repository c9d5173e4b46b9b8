using RetinaNet.Model;

namespace RetinaNet.Cli;

/// <summary>The public <see cref="Detector"/>'s options from the command line (serve, video): device, precision and
/// the post-processing and input size given, else the model's own.</summary>
static class DetectorArgs
{
    public static DetectorOptions From(string? device, bool fullPrecision, InferenceOverrides given, int batch) => new()
    {
        Device = device, FullPrecision = fullPrecision, Batch = batch,
        ScoreThreshold = given.ScoreThreshold, TopN = given.TopN, NmsThreshold = given.NmsThreshold,
        MaxDetections = given.Detections, Resize = given.Resize, MaxSize = given.MaxSize,
    };
}
