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
using static RetinaNet.Cli.Validation;

namespace RetinaNet.Cli;

/// <summary><c>retinanet train</c>: every option checked first (mistakes surface before any work), then the library's
/// <see cref="TrainingJob"/> on each rank.</summary>
static class TrainCommand
{

    public static int Run(ParsedArgs a, CommandContext context)
    {
        string model = a.Positionals["model"];
        Extension("MODEL", model, ModelFiles.CheckpointExtensions);
        WritableParent("MODEL", model);
        ExistingFile("--annotations", a.String("--annotations"), ".json");
        ExistingDirectory("--images", a.String("--images"));
        if (a.Has("--classes")) Positive(a, "--classes");
        Positive(a, "--batch");
        Positive(a, "--resize"); Positive(a, "--max-size");
        var jitter = a.Ints("--jitter");
        if (jitter[0] <= 0 || jitter[0] > jitter[1])
            throw new UsageException($"--jitter: expected 0 < min <= max, got {jitter[0]} {jitter[1]}");
        Positive(a, "--iters");
        var milestones = a.Ints("--milestones");
        if (milestones.Any(m => m < 0) || milestones.Zip(milestones.Skip(1)).Any(p => p.Second <= p.First))
            throw new UsageException(
                $"--milestones: expected increasing non-negative iterations, got {string.Join(' ', milestones)}");
        PositiveDouble(a, "--schedule"); PositiveDouble(a, "--lr"); NonNegative(a, "--warmup");
        PositiveDouble(a, "--gamma");
        Positive(a, "--val-iters"); NonNegative(a, "--patience"); NonNegativeDouble(a, "--regularization-l2");
        if (a.Int("--patience") > 0 && !a.Has("--val-annotations"))
            throw new UsageException("--patience needs --val-annotations: it counts validations without a better mAP");
        foreach (var o in new[]
            { "--augment-brightness", "--augment-contrast", "--augment-hue", "--augment-saturation" })
            NonNegativeDouble(a, o);
        Positive(a, "--checkpoint-interval"); NonNegative(a, "--log-interval");
        if (a.Has("--val-annotations")) ExistingFile("--val-annotations", a.String("--val-annotations"), ".json");
        if (a.Has("--val-images"))
        {
            if (!a.Has("--val-annotations"))
                throw new UsageException("--val-images needs --val-annotations (the ground truth to evaluate against)");
            ExistingDirectory("--val-images", a.String("--val-images"));
        }
        if (a.Has("--fine-tune")) ExistingFile("--fine-tune", a.String("--fine-tune"), ModelFiles.CheckpointExtensions);
        if (a.Has("--backbone-weights") && a.String("--backbone-weights") != "none")
            ExistingFile("--backbone-weights", a.String("--backbone-weights"), ModelFiles.CheckpointExtensions);
        if (a.Has("--logdir")) WritableDirectory("--logdir", a.String("--logdir")!);
        if (a.Has("--post-metrics") && !(Uri.TryCreate(a.String("--post-metrics"), UriKind.Absolute, out var uri)
            && uri.Scheme is "http" or "https"))
            throw new UsageException($"--post-metrics: expected an http(s) URL, got '{a.String("--post-metrics")}'");
        Unsupported(a, "ODTK's variants of rotated-box augmentation are not implemented; --rotated-bbox trains with "
            + "flips and --augment-rotate's quarter turns, which keep theta in [-pi/4, pi/4]",
            "--augment-free", "--absolute-angle");
        if (a.Flag("--rotated-bbox") && a.Flag("--augment-crop"))
            throw new UsageException("--augment-crop cuts boxes to the crop, which would move a rotated box: " +
                "leave it out with --rotated-bbox");
        var config = TrainConfig(a, Classes(a)); // last: it reads the annotation file
        GpuDecode(a, DeviceChoice.Resolve(a.String("--device")));
        return Launch.Run(a, context, placement => Train(a, context, placement, model, config, milestones, jitter));
    }

    /// <summary>ODTK's --classes default, kept for a file whose categories cannot be read here (loading it says
    /// why).</summary>
    const int OdtkClasses = 80;

    /// <summary>--classes, by default the annotation file's category count. The model's classes are the categories in
    /// id order (ODTK's), so any ids fit given enough classes; validation's file must have the same ids.</summary>
    static int Classes(ParsedArgs a)
    {
        string annotations = a.String("--annotations")!;
        int? given = a.Has("--classes") ? Positive(a, "--classes") : null;
        if (CocoFile.PeekCategoryIds(annotations) is not { } ids) return given ?? OdtkClasses;
        int count = ids.Distinct().Count();
        if (given < count)
            throw new UsageException($"--classes {given}: {annotations} has {count} categories, more than the model "
                + $"can predict; pass --classes {count} or leave --classes out (default: the file's category count)");
        if (given is null && count == 0)
            throw new UsageException(
                $"--annotations: {annotations} lists no categories; add its \"categories\" (the classes to learn)");
        if (a.String("--val-annotations") is string val && CocoFile.PeekCategoryIds(val) is { } valIds
            && CategoryDifference(annotations, ids, val, valIds) is string difference)
            throw new UsageException($"--val-annotations: {difference}; the model's classes are the training "
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
    static IEnumerable<string> ScheduleWarnings(ParsedArgs a, long iterations, int[] milestones)
    {
        double schedule = a.Double("--schedule");
        string iters = schedule == 1 ? $"--iters {iterations}" : $"the {iterations} iterations of --iters × schedule";
        int warmup = a.Int("--warmup");
        if (warmup > iterations)
            yield return $"warning: --warmup {warmup} is beyond {iters}: the learning rate never reaches --lr";
        var late = milestones.Where(m => LearningRateSchedule.Scale(m, schedule) > iterations).ToArray();
        if (late.Length > 0)
            yield return $"warning: --milestones {string.Join(' ', late)} {(late.Length == 1 ? "is" : "are")} beyond "
                + $"{iters}: the learning rate never decays there";
    }

    static int Train(ParsedArgs a, CommandContext context, Placement placement, string model, DetectorConfig config,
        int[] milestones, int[] jitter)
    {
        var device = placement.Device;
        var stdout = placement.Output(context.Stdout);
        double schedule = a.Double("--schedule");
        long iterations = LearningRateSchedule.Scale(a.Int("--iters"), schedule);
        if (placement.IsMaster)
            foreach (var warning in ScheduleWarnings(a, iterations, milestones)) context.Stderr.WriteLine(warning);
        var options = new TrainingJobOptions
        {
            ModelPath = model, Annotations = a.String("--annotations")!, Images = a.String("--images")!,
            Config = config, Device = device,
            Settings = new TrainingSettings
            {
                Iterations = iterations,
                Schedule = LearningRateSchedule.Odtk(a.Double("--lr"), a.Int("--warmup"),
                    milestones.Select(m => (long)m), a.Double("--gamma"), schedule),
                Batch = placement.RankBatch,
                WeightDecay = a.Double("--regularization-l2"),
                MixedPrecision = ExecutionOptions.MixedPrecisionFor(device, a.Flag("--full-precision")),
                ChannelsLast = device.type == TorchSharp.DeviceType.CUDA,
                CheckpointInterval = TimeSpan.FromSeconds(a.Int("--checkpoint-interval")),
                LogInterval = TimeSpan.FromSeconds(a.Int("--log-interval")),
                ValidationInterval = a.Int("--val-iters"),
                Patience = a.Int("--patience"),
                Seed = a.Int("--seed"),
            },
            Augment = new AugmentationOptions(jitter[0], jitter[1], a.Int("--max-size"), a.Flag("--augment-rotate"),
                a.Flag("--augment-crop"), a.Double("--augment-brightness"), a.Double("--augment-contrast"),
                a.Double("--augment-saturation"), a.Double("--augment-hue")),
            BackboneWeights = a.String("--backbone-weights"), FineTune = a.String("--fine-tune"),
            Override = a.Flag("--override"),
            ValAnnotations = a.String("--val-annotations"), ValImages = a.String("--val-images"),
            Resize = a.GivenInt("--resize"), MaxSize = a.GivenInt("--max-size"), // given: wins over a checkpoint's
            LogDir = a.String("--logdir"), PostMetrics = a.String("--post-metrics"),
            SkipBadImages = a.Flag("--skip-bad-images"),
            Workers = placement.Workers, GpuDecode = a.Flag("--with-dali"),
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

    static DetectorConfig TrainConfig(ParsedArgs a, int classes)
    {
        var ious = a.Doubles("--anchor-ious");
        var config = new DetectorConfig
        {
            Backbones = Backbones(a),
            Classes = classes,
            Anchors = new AnchorConfig
            {
                Ratios = a.Doubles("--anchor-ratios"), Scales = a.Doubles("--anchor-scales"),
                Angles = a.Flag("--rotated-bbox") ? AnchorConfig.DefaultAngles : [],
            },
            Inference = InferenceSettings(a),
            AnchorIous = (ious[0], ious[1]),
        };
        try { config.Validate(); }
        catch (ArgumentException e) { throw new UsageException(e.Message); }
        return config;
    }

}
