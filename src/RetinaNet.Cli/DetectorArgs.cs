namespace RetinaNet.Cli;

/// <summary>The public <see cref="Detector"/>'s options from the command line (serve, video): device, precision and
/// the post-processing and input size given, else the model's own.</summary>
static class DetectorArgs
{
    public static DetectorOptions From(ParsedArgs a, int batch) => new()
    {
        Device = a.String("--device"), FullPrecision = a.Flag("--full-precision"), Batch = batch,
        ScoreThreshold = a.GivenDouble("--score-threshold"), TopN = a.GivenInt("--top-n"),
        NmsThreshold = a.GivenDouble("--nms"), MaxDetections = a.GivenInt("--detections"),
        Resize = a.GivenInt("--resize"), MaxSize = a.GivenInt("--max-size"),
    };
}
