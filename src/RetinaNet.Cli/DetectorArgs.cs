namespace RetinaNet.Cli;

/// <summary>The public <see cref="Detector"/>'s options from the command line (serve, video): device, precision and
/// the post-processing and input size given, else the model's own.</summary>
static class DetectorArgs
{
    public static DetectorOptions From(ParsedArgs a, int batch)
    {
        var given = Validation.Overrides(a);
        return new()
        {
            Device = a.String("--device"), FullPrecision = a.Flag("--full-precision"), Batch = batch,
            ScoreThreshold = given.ScoreThreshold, TopN = given.TopN, NmsThreshold = given.NmsThreshold,
            MaxDetections = given.Detections, Resize = given.Resize, MaxSize = given.MaxSize,
        };
    }
}
