using RetinaNet.Model;

namespace RetinaNet.Cli;

/// <summary>Options of several commands, declared once; a command shows one with its own help or default through
/// the variants of <see cref="Option{T}"/>. Every ODTK option keeps its name, default and meaning; ours are
/// marked.</summary>
static class SharedOptions
{
    static readonly InferenceConfig Defaults = new();

    /// <summary>The model's own settings: a checkpoint stores them, infer, serve and export use them unless
    /// given.</summary>
    public const string ModelsSetting = "the model's";

    // Ours, shared by train, infer, serve, export and summary: post-processing settings.
    public static readonly Option<double> ScoreThreshold = Option.Double("--score-threshold",
        "(ours) minimum class score kept by decoding", "value", Defaults.ScoreThreshold);
    public static readonly Option<int> TopN = Option.Int("--top-n",
        "(ours) candidates kept per pyramid level before NMS", "number", Defaults.TopN);
    public static readonly Option<double> Nms = Option.Double("--nms", "(ours) NMS IoU threshold", "value",
        Defaults.NmsThreshold);
    public static readonly Option<int> Detections = Option.Int("--detections",
        "(ours) detections kept per image after NMS", "number", Defaults.Detections);

    // ODTK's input scale; train stores it in the checkpoint.
    public static readonly Option<int> Resize = Option.Int("--resize", "resize to given size", "scale",
        Defaults.Resize);
    public static readonly Option<int> MaxSize = Option.Int("--max-size", "maximum resizing size", "max",
        Defaults.MaxSize);

    public static readonly Option<string?> Device = Option.OptionalString("--device",
        "(ours) cpu or cuda (default: cuda when a GPU is present)", "cpu|cuda");

    // Ours, shared by train and infer: several GPUs and machines.
    public static readonly Option<int?> Gpus = Option.OptionalInt("--gpus", "(ours) GPUs (one process each) to use " +
        "on this machine; default: all; ignored under a launcher (RANK/WORLD_SIZE set)", "number");
    public static readonly Option<int> DistTimeout = Option.Int("--dist-timeout", "(ours) seconds any rank may keep " +
        "the others waiting (joining, a silent or stuck rank) before the job stops with an error naming it",
        "seconds", 300);

    // Ours, shared by train and infer: the data loader.
    public static readonly Option<int> Workers = Option.Int("--workers",
        "(ours) image loading threads (0: one per core, at most 12)", "number", 0);
    public static readonly Option<bool> SkipBadImages = Option.Flag("--skip-bad-images",
        "(ours) report and skip missing or corrupt images instead of stopping");

    // train's, infer's and draw's folder of images (infer's takes more: its help says so)
    public static readonly Option<string> Images = Option.String("--images", "path to images", "path", ".");

    /// <summary>train's and infer's; their default depends on the GPUs seen (<see cref="Option{T}.WithDefault"/>).
    /// </summary>
    public static readonly Option<int> Batch = Option.Int("--batch", "batch size (over all GPUs)", "size");
    public static readonly Option<bool> FullPrecision = Option.Flag("--full-precision", "inference in full precision");
    public static readonly Option<bool> WithDali = Option.Flag("--with-dali",
        "use the GPU data path (nvJPEG decode, GPU resize)");
    public static readonly Option<bool> RotatedBbox = Option.Flag("--rotated-bbox",
        "inference using a rotated bounding box model");
    public static readonly Option<IReadOnlyList<string>> Backbone = Option.Strings("--backbone", Arity.OneOrMore,
        "backbone model (or list of)", "name", "ResNet50FPN");

    public static IEnumerable<Option> Postprocessing(string? from = null) =>
        [ScoreThreshold.WithDefaultFrom(from), TopN.WithDefaultFrom(from), Nms.WithDefaultFrom(from),
            Detections.WithDefaultFrom(from)];

    public static IEnumerable<Option> InputSize(string? from = null) =>
        [Resize.WithDefaultFrom(from), MaxSize.WithDefaultFrom(from)];

    public static IEnumerable<Option> MultiGpu() => [Gpus, DistTimeout];

    public static IEnumerable<Option> Loading() => [Workers, SkipBadImages];

    /// <summary>The post-processing options given (null where not given), for a command without the input
    /// size.</summary>
    public static InferenceOverrides PostprocessingGiven(ParsedArgs a)
        => new(a.Given(ScoreThreshold), a.Given(TopN), a.Given(Nms), a.Given(Detections));

    /// <summary>The post-processing and input size options given (null where not given).</summary>
    public static InferenceOverrides Overrides(ParsedArgs a)
        => PostprocessingGiven(a) with { Resize = a.Given(Resize), MaxSize = a.Given(MaxSize) };

    /// <summary>train's and infer's placement options.</summary>
    public static LaunchArguments Launch(ParsedArgs a)
        => new(a.Command, a.Get(Device), a.Get(DistTimeout), a.Get(Gpus), a.Given(Batch), a.Get(Workers));
}
