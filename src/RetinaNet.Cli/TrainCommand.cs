using RetinaNet.Distributed;
using System.Diagnostics;
using RetinaNet.Boxes;
using RetinaNet.Checkpoints;
using RetinaNet.Data.Coco;
using RetinaNet.Inference;
using RetinaNet.Inference.Onnx;
using RetinaNet.Model;
using RetinaNet.Training;
using RetinaNet.Data.Transforms;
using TorchSharp;
using static TorchSharp.torch;
using static RetinaNet.Cli.SharedOptions;
using static RetinaNet.Cli.Validation;

namespace RetinaNet.Cli;

/// <summary>train's command line, read once: the values given or defaulted; <see cref="Given"/>, the
/// post-processing and input size given (they win over a checkpoint's).</summary>
sealed record TrainArguments(string Model, string Annotations, string Images, IReadOnlyList<string> Backbone,
    int? Classes, int Batch, int Resize, int MaxSize, int[] Jitter, int Iters, int[] Milestones, double Schedule,
    bool FullPrecision, double Lr, int Warmup, double Gamma, bool Override, string? ValAnnotations,
    string? ValImages, string? PostMetrics, string? FineTune, string? LogDir, int ValIters, int Patience,
    bool WithDali, bool AugmentRotate, bool AugmentFree, double AugmentBrightness, double AugmentContrast,
    double AugmentHue, double AugmentSaturation, double RegularizationL2, bool RotatedBbox, double[] AnchorIous,
    bool AbsoluteAngle, double[] AnchorRatios, double[] AnchorScales, string? BackboneWeights,
    int CheckpointInterval, int LogInterval, bool AugmentCrop, int Seed, bool SkipBadImages,
    InferenceOverrides Given, LaunchArguments Launch);

/// <summary><c>retinanet train</c>: every option checked first (mistakes surface before any work), then the library's
/// <see cref="TrainingJob"/> on each rank.</summary>
static class TrainCommand
{
    static readonly Option<string> Annotations = Option.Required("--annotations", "path to COCO style annotations",
        "path");
    static readonly Option<int?> Classes = Option.OptionalInt("--classes", "number of classes", "num",
        "the annotation file's category count");
    static readonly Option<int[]> Jitter = Option.Ints("--jitter", Arity.Two, "jitter size within range", "min max",
        640, 1024);
    static readonly Option<int> Iters = Option.Int("--iters", "number of iterations to train for", "number", 90000);
    static readonly Option<int[]> Milestones = Option.Ints("--milestones", Arity.Any,
        "list of iteration indices where learning rate decays", "iter", 60000, 80000);
    static readonly Option<double> Schedule = Option.Double("--schedule",
        "scale schedule (affecting iters and milestones)", "scale", 1);
    static readonly Option<double> Lr = Option.Double("--lr", "learning rate", "value", 0.01);
    static readonly Option<int> Warmup = Option.Int("--warmup", "number of warmup iterations", "iterations", 1000);
    static readonly Option<double> Gamma = Option.Double("--gamma", "multiplicative factor of learning rate decay",
        "value", 0.1);
    static readonly Option<bool> Override = Option.Flag("--override",
        "override model (start over instead of resuming)");
    static readonly Option<string?> ValAnnotations = Option.OptionalString("--val-annotations",
        "path to COCO style validation annotations", "path");
    static readonly Option<string?> ValImages = Option.OptionalString("--val-images", "path to validation images",
        "path");
    static readonly Option<string?> PostMetrics = Option.OptionalString("--post-metrics",
        "post metrics to specified url", "url");
    static readonly Option<string?> FineTune = Option.OptionalString("--fine-tune", "fine tune a pretrained model",
        "path");
    static readonly Option<string?> LogDir = Option.OptionalString("--logdir",
        "directory where to write logs (TensorBoard events; ours: results.csv, results.png)", "logdir");
    static readonly Option<int> ValIters = Option.Int("--val-iters", "number of iterations between each validation",
        "number", 8000);
    static readonly Option<int> Patience = Option.Int("--patience", "(ours) stop after this many validations " +
        "without a better mAP (0: never); the best model is kept as MODEL.best.pth either way", "validations", 0);
    static readonly Option<bool> AugmentRotate = Option.Flag("--augment-rotate",
        "use four-fold rotational augmentation");
    static readonly Option<bool> AugmentFree = Option.Flag("--augment-free",
        "use free rotational augmentation (rotated boxes only)");
    static readonly Option<double> AugmentBrightness = Option.Double("--augment-brightness",
        "adjust the brightness of the image", "value", 0.002);
    static readonly Option<double> AugmentContrast = Option.Double("--augment-contrast",
        "adjust the contrast of the image", "value", 0.002);
    static readonly Option<double> AugmentHue = Option.Double("--augment-hue", "adjust the hue of the image", "value",
        0.0002);
    static readonly Option<double> AugmentSaturation = Option.Double("--augment-saturation",
        "adjust the saturation of the image", "value", 0.002);
    static readonly Option<double> RegularizationL2 = Option.Double("--regularization-l2",
        "L2 regularization for optim", "alpha", 0.0001);
    static readonly Option<double[]> AnchorIous = Option.Doubles("--anchor-ious", Arity.Two,
        "anchor/bbox overlap threshold (background, foreground)", "value value", 0.4, 0.5);
    static readonly Option<bool> AbsoluteAngle = Option.Flag("--absolute-angle",
        "regress absolute angle (rotated boxes only)");
    static readonly Option<double[]> AnchorRatios = Option.Doubles("--anchor-ratios", Arity.OneOrMore,
        "(ours) anchor aspect ratios (h/w)", "ratio", AnchorConfig.DefaultRatios);
    static readonly Option<double[]> AnchorScales = Option.Doubles("--anchor-scales", Arity.OneOrMore,
        "(ours) anchor scales, in units of the level stride", "scale", AnchorConfig.DefaultScales);
    static readonly Option<string?> BackboneWeights = Option.OptionalString("--backbone-weights", "(ours) ImageNet " +
        "weights for the backbone, torchvision layout (.pth or .safetensors); none: random weights; default: " +
        "torchvision's, fetched once", "path");
    static readonly Option<int> CheckpointInterval = Option.Int("--checkpoint-interval",
        "(ours) seconds between checkpoints", "seconds", 60);
    static readonly Option<int> LogInterval = Option.Int("--log-interval",
        "(ours) seconds between log lines (0: every iteration)", "seconds", 10);
    static readonly Option<bool> AugmentCrop = Option.Flag("--augment-crop",
        "(ours) bbox-safe random crop, as ODTK's DALI pipeline");
    static readonly Option<int> Seed = Option.Int("--seed", "(ours) seed of the data order and augmentation", "number",
        0);

    public static CommandSpec Spec(int defaultBatch) => new("train",
        "Train a RetinaNet detector on COCO-style annotations.",
        [("model", "path to the output model, or the checkpoint to resume from")],
        [
            Annotations, Images, Backbone, Classes, Batch.WithDefault(defaultBatch), .. InputSize(), Jitter, Iters,
            Milestones, Schedule, FullPrecision.WithHelp("train in full precision"), Lr, Warmup, Gamma, Override,
            ValAnnotations, ValImages, PostMetrics, FineTune, LogDir, ValIters, Patience, WithDali, AugmentRotate,
            AugmentFree, AugmentBrightness, AugmentContrast, AugmentHue, AugmentSaturation, RegularizationL2,
            RotatedBbox.WithHelp("detect rotated box"), AnchorIous, AbsoluteAngle, AnchorRatios, AnchorScales,
            BackboneWeights, CheckpointInterval, LogInterval, AugmentCrop, Seed, .. Loading(), .. MultiGpu(),
            .. Postprocessing(), SharedOptions.Device,
        ]);

    static TrainArguments Bind(ParsedArgs a) => new(a.Positionals["model"], a.Get(Annotations), a.Get(Images),
        a.Get(Backbone), a.Get(Classes), a.Get(Batch), a.Get(Resize), a.Get(MaxSize), a.Get(Jitter), a.Get(Iters),
        a.Get(Milestones), a.Get(Schedule), a.Get(FullPrecision), a.Get(Lr), a.Get(Warmup), a.Get(Gamma),
        a.Get(Override), a.Get(ValAnnotations), a.Get(ValImages), a.Get(PostMetrics), a.Get(FineTune),
        a.Get(LogDir), a.Get(ValIters), a.Get(Patience), a.Get(WithDali), a.Get(AugmentRotate),
        a.Get(AugmentFree), a.Get(AugmentBrightness), a.Get(AugmentContrast), a.Get(AugmentHue),
        a.Get(AugmentSaturation), a.Get(RegularizationL2), a.Get(RotatedBbox), a.Get(AnchorIous),
        a.Get(AbsoluteAngle), a.Get(AnchorRatios), a.Get(AnchorScales), a.Get(BackboneWeights),
        a.Get(CheckpointInterval), a.Get(LogInterval), a.Get(AugmentCrop), a.Get(Seed), a.Get(SkipBadImages),
        Overrides(a), SharedOptions.Launch(a));

    public static int Run(ParsedArgs parsed, CommandContext context)
    {
        var a = Bind(parsed);
        string model = a.Model;
        Extension("MODEL", model, ModelFiles.CheckpointExtensions);
        WritableParent("MODEL", model);
        ExistingFile(Annotations.Name, a.Annotations, ".json");
        ExistingDirectory(Images.Name, a.Images);
        if (a.Classes is int classes) Positive(Classes, classes);
        Positive(Batch, a.Batch);
        Positive(Resize, a.Resize); Positive(MaxSize, a.MaxSize);
        var jitter = a.Jitter;
        if (jitter[0] <= 0 || jitter[0] > jitter[1])
            throw new UsageException($"{Jitter.Name}: expected 0 < min <= max, got {jitter[0]} {jitter[1]}");
        Positive(Iters, a.Iters);
        var milestones = a.Milestones;
        if (milestones.Any(m => m < 0) || milestones.Zip(milestones.Skip(1)).Any(p => p.Second <= p.First))
            throw new UsageException($"{Milestones.Name}: expected increasing non-negative iterations, got "
                + string.Join(' ', milestones));
        PositiveDouble(Schedule, a.Schedule); PositiveDouble(Lr, a.Lr); NonNegative(Warmup, a.Warmup);
        PositiveDouble(Gamma, a.Gamma);
        Positive(ValIters, a.ValIters); NonNegative(Patience, a.Patience);
        NonNegativeDouble(RegularizationL2, a.RegularizationL2);
        if (a.Patience > 0 && a.ValAnnotations is null)
            throw new UsageException($"{Patience.Name} needs {ValAnnotations.Name}: it counts validations without a "
                + "better mAP");
        NonNegativeDouble(AugmentBrightness, a.AugmentBrightness);
        NonNegativeDouble(AugmentContrast, a.AugmentContrast);
        NonNegativeDouble(AugmentHue, a.AugmentHue); NonNegativeDouble(AugmentSaturation, a.AugmentSaturation);
        Positive(CheckpointInterval, a.CheckpointInterval); NonNegative(LogInterval, a.LogInterval);
        if (a.ValAnnotations is string valAnnotations) ExistingFile(ValAnnotations.Name, valAnnotations, ".json");
        if (a.ValImages is string valImages)
        {
            if (a.ValAnnotations is null)
                throw new UsageException($"{ValImages.Name} needs {ValAnnotations.Name} (the ground truth to evaluate "
                    + "against)");
            ExistingDirectory(ValImages.Name, valImages);
        }
        if (a.FineTune is string fineTune) ExistingFile(FineTune.Name, fineTune, ModelFiles.CheckpointExtensions);
        if (a.BackboneWeights is string weights && weights != "none")
            ExistingFile(BackboneWeights.Name, weights, ModelFiles.CheckpointExtensions);
        if (a.LogDir is string logDir) WritableDirectory(LogDir.Name, logDir);
        if (a.PostMetrics is string url && !(Uri.TryCreate(url, UriKind.Absolute, out var uri)
            && uri.Scheme is "http" or "https"))
            throw new UsageException($"{PostMetrics.Name}: expected an http(s) URL, got '{url}'");
        Unsupported($"ODTK's variants of rotated-box augmentation are not implemented; {RotatedBbox.Name} trains with "
            + $"flips and {AugmentRotate.Name}'s quarter turns, which keep theta in [-pi/4, pi/4]",
            (AugmentFree, a.AugmentFree), (AbsoluteAngle, a.AbsoluteAngle));
        if (a.RotatedBbox && a.AugmentCrop)
            throw new UsageException($"{AugmentCrop.Name} cuts boxes to the crop, which would move a rotated box: "
                + $"leave it out with {RotatedBbox.Name}");
        var config = TrainConfig(a, ClassCount(a)); // last: it reads the annotation file
        GpuDecode(a.WithDali, DeviceChoice.Resolve(a.Launch.Device));
        return Launch.Run(a.Launch, context, placement => Train(a, context, placement, config));
    }

    /// <summary>ODTK's --classes default, kept for a file whose categories cannot be read here (loading it says
    /// why).</summary>
    const int OdtkClasses = 80;

    /// <summary>--classes, by default the annotation file's category count. The model's classes are the categories in
    /// id order (ODTK's), so any ids fit given enough classes; validation's file must have the same ids.</summary>
    static int ClassCount(TrainArguments a)
    {
        string annotations = a.Annotations;
        int? given = a.Classes is int classes ? Positive(Classes, classes) : null;
        if (CocoFile.PeekCategoryIds(annotations) is not { } ids) return given ?? OdtkClasses;
        int count = ids.Distinct().Count();
        if (given < count)
            throw new UsageException($"{Classes.Name} {given}: {annotations} has {count} categories, more than the "
                + $"model can predict; pass {Classes.Name} {count} or leave {Classes.Name} out (default: the file's "
                + "category count)");
        if (given is null && count == 0)
            throw new UsageException($"{Annotations.Name}: {annotations} lists no categories; add its \"categories\" "
                + "(the classes to learn)");
        if (a.ValAnnotations is string val && CocoFile.PeekCategoryIds(val) is { } valIds
            && CategoryDifference(annotations, ids, val, valIds) is string difference)
            throw new UsageException($"{ValAnnotations.Name}: {difference}; the model's classes are the training "
                + "categories in id order, so give both files the same \"categories\" (one may have no objects)");
        return given ?? count;
    }

    /// <summary>How two files' category ids differ, or null when they are the same.</summary>
    static string? CategoryDifference(string train, IReadOnlyList<long> trainIds, string val, IReadOnlyList<long> ids)
    {
        foreach (long id in ids) if (!trainIds.Contains(id)) return $"{val} has category id {id}, which {train} lacks";
        foreach (long id in trainIds) if (!ids.Contains(id)) return $"{val} lacks category id {id} of {train}";
        return null;
    }

    /// <summary>A warmup or milestone past the last iteration never takes effect (ODTK's defaults with a short
    /// --iters): said once, before training, which goes on.</summary>
    static IEnumerable<string> ScheduleWarnings(TrainArguments a, long iterations)
    {
        double schedule = a.Schedule;
        string iters = schedule == 1 ? $"{Iters.Name} {iterations}"
            : $"the {iterations} iterations of {Iters.Name} × schedule";
        int warmup = a.Warmup;
        if (warmup > iterations)
            yield return $"warning: {Warmup.Name} {warmup} is beyond {iters}: the learning rate never reaches "
                + Lr.Name;
        var late = a.Milestones.Where(m => LearningRateSchedule.Scale(m, schedule) > iterations).ToArray();
        if (late.Length > 0)
            yield return $"warning: {Milestones.Name} {string.Join(' ', late)} {(late.Length == 1 ? "is" : "are")} "
                + $"beyond {iters}: the learning rate never decays there";
    }

    static int Train(TrainArguments a, CommandContext context, Placement placement, DetectorConfig config)
    {
        var device = placement.Device;
        var stdout = placement.Output(context.Stdout);
        double schedule = a.Schedule;
        long iterations = LearningRateSchedule.Scale(a.Iters, schedule);
        if (placement.IsMaster)
            foreach (var warning in ScheduleWarnings(a, iterations)) context.Stderr.WriteLine(warning);
        var options = new TrainingJobOptions
        {
            ModelPath = a.Model, Annotations = a.Annotations, Images = a.Images,
            Config = config, Device = device,
            Settings = new TrainingSettings
            {
                Iterations = iterations,
                Schedule = LearningRateSchedule.Odtk(a.Lr, a.Warmup, a.Milestones.Select(m => (long)m), a.Gamma,
                    schedule),
                Batch = placement.RankBatch,
                WeightDecay = a.RegularizationL2,
                MixedPrecision = ExecutionOptions.MixedPrecisionFor(device, a.FullPrecision),
                ChannelsLast = device.type == TorchSharp.DeviceType.CUDA,
                CheckpointInterval = TimeSpan.FromSeconds(a.CheckpointInterval),
                LogInterval = TimeSpan.FromSeconds(a.LogInterval),
                ValidationInterval = a.ValIters,
                Patience = a.Patience,
                Seed = a.Seed,
            },
            Augment = new AugmentationOptions(a.Jitter[0], a.Jitter[1], a.MaxSize, a.AugmentRotate, a.AugmentCrop,
                a.AugmentBrightness, a.AugmentContrast, a.AugmentSaturation, a.AugmentHue),
            BackboneWeights = a.BackboneWeights, FineTune = a.FineTune,
            Override = a.Override,
            ValAnnotations = a.ValAnnotations, ValImages = a.ValImages,
            Resize = a.Given.Resize, MaxSize = a.Given.MaxSize, // given: wins over a checkpoint's
            LogDir = a.LogDir, PostMetrics = a.PostMetrics,
            SkipBadImages = a.SkipBadImages,
            Workers = placement.Workers, GpuDecode = a.WithDali,
            ProgressBar = !Console.IsOutputRedirected && ReferenceEquals(stdout, Console.Out),
            Group = placement.Group,
        };
        using var stop = new CancellationTokenSource();
        int presses = 0;
        // rank 0 saves and stops the job; the other ranks leave it to rank 0, unless Ctrl-C comes again
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            if (!placement.IsMaster) { e.Cancel = Interlocked.Increment(ref presses) == 1; return; }
            e.Cancel = true; stdout.WriteLine("Stopping: saving a checkpoint (Ctrl-C again to abort)"); stop.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        try
        {
            TrainingJob.Run(options, stdout, Console.Error, stop.Token);
        }
        finally { Console.CancelKeyPress -= onCancel; }
        return CommandLine.Ok;
    }

    static DetectorConfig TrainConfig(TrainArguments a, int classes)
    {
        var ious = a.AnchorIous;
        var config = new DetectorConfig
        {
            Backbones = Backbones(a.Backbone),
            Classes = classes,
            Anchors = new AnchorConfig
            {
                Ratios = a.AnchorRatios, Scales = a.AnchorScales,
                Angles = a.RotatedBbox ? AnchorConfig.DefaultAngles : [],
            },
            Inference = InferenceSettings(a.Given),
            AnchorIous = (ious[0], ious[1]),
        };
        try { config.Validate(); }
        catch (ArgumentException e) { throw new UsageException(e.Message); }
        return config;
    }

}
