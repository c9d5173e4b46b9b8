using RetinaNet.Core;
using RetinaNet.Checkpoints;
using RetinaNet.Data;
using RetinaNet.Data.Coco;
using RetinaNet.Data.Loading;
using RetinaNet.Data.Transforms;
using RetinaNet.Distributed;
using RetinaNet.Evaluation;
using RetinaNet.Inference;
using RetinaNet.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Training;

/// <summary>What <c>retinanet train</c> (and the demo) asks for, resolved from the command line.</summary>
public sealed record TrainingJobOptions
{
    public required string ModelPath { get; init; }
    public required string Annotations { get; init; }
    public required string Images { get; init; }
    public required DetectorConfig Config { get; init; }
    public required Device Device { get; init; }
    public required TrainingSettings Settings { get; init; }
    public required AugmentationOptions Augment { get; init; }
    /// <summary>ImageNet weights; "none" starts from random weights; null fetches torchvision's.</summary>
    public string? BackboneWeights { get; init; }
    public string? FineTune { get; init; }
    public bool Override { get; init; }
    public string? ValAnnotations { get; init; }
    public string? ValImages { get; init; }
    /// <summary>Validation's input size when given; else the resumed checkpoint's, else <see cref="Config"/>'s. Saved
    /// with the model, so infer and export use it too.</summary>
    public int? Resize { get; init; }
    public int? MaxSize { get; init; }
    public string? LogDir { get; init; }
    public string? PostMetrics { get; init; }
    public bool SkipBadImages { get; init; }
    public int Workers { get; init; }
    public bool ProgressBar { get; init; }
    /// <summary>Decode JPEGs on the GPU (nvJPEG) and augment there: ODTK's --with-dali.</summary>
    public bool GpuDecode { get; init; }
    /// <summary>Train FPN and heads only (the demo's random backbone).</summary>
    public bool FreezeBackbone { get; init; }
    /// <summary>Called after every iteration (tests use it to interrupt a run as Ctrl-C would).</summary>
    public Action<long>? AfterIteration { get; init; }
    /// <summary>Called with each log line's numbers (focal and box loss averaged since the last line, im/s, lr) and
    /// with validation results; a log interval of zero makes it every iteration.</summary>
    public Action<long, IReadOnlyDictionary<string, double>>? OnMetrics { get; init; }
    /// <summary>This process as a rank of a multi-process job (null: the only process).
    /// <see cref="TrainingSettings.Batch"/> is then this rank's share of the global batch.</summary>
    public ProcessGroup? Group { get; init; }
}

/// <summary>A training run from options: resume (ODTK's rule: an existing MODEL file is resumed unless --override),
/// fine-tune or start fresh, then the loop with checkpoints, logging and validation wired in. In a multi-process job
/// every rank prepares the same way (from the same files), takes rank 0's state (<see cref="Trainer.Synchronize"/>)
/// and trains on its shard; rank 0 alone prints, logs, posts metrics and writes checkpoints; validation runs on all
/// ranks and rank 0 scores it. Ctrl-C stops rank 0 (checkpoint saved), which then stops the others.</summary>
public static class TrainingJob
{
    public static long Run(TrainingJobOptions o, TextWriter stdout, TextWriter stderr, CancellationToken stop)
    {
        var group = o.Group;
        bool master = group?.IsMaster ?? true;
        if (!master) stdout = TextWriter.Null;
        // the data first: its errors come before any weights are read or downloaded
        bool rotated = o.Config.Rotated;
        var dataset = DetectionDataset.Load(o.Annotations, o.Images, stderr, o.SkipBadImages, rotated);
        var valCoco = o.ValAnnotations is null ? null : CocoFile.Load(o.ValAnnotations);
        (CocoFile Coco, DetectionDataset Data)? val = valCoco is null ? null
            : (valCoco, DetectionDataset.FromCoco(valCoco, o.ValImages ?? o.Images, stderr, o.SkipBadImages));
        var (model, resume) = Prepare(o, stdout);
        using var _ = model;
        if (model.Config.Rotated != rotated)
            throw new ArgumentException($"{(resume is null ? o.FineTune : o.ModelPath)} is "
                + $"{(model.Config.Rotated ? "a rotated-box" : "an axis-aligned")} model: "
                + (model.Config.Rotated ? "pass --rotated-bbox"
                    : "drop --rotated-bbox, or --override to start a rotated model over"));
        var stored = model.Config.Inference;
        model.UseInferenceSettings(stored with
        {
            Resize = o.Resize ?? stored.Resize, MaxSize = o.MaxSize ?? stored.MaxSize,
        });
        model.FreezeStems();
        if (o.FreezeBackbone) model.FreezeBodies();
        if (dataset.Categories.Count > model.Config.Classes)
            throw new BadInputException(o.Annotations, $"{dataset.Categories.Count} categories but the model has " +
                $"{model.Config.Classes} classes; pass --classes {dataset.Categories.Count}");

        model.UseCategories(dataset.Categories.CategoryIds
            .Zip(dataset.Categories.Names, (id, name) => new Category(id, name)).ToList());
        model.to(o.Device);
        if (resume is null && o.FineTune is null && o.BackboneWeights is "none")
            CalibrateBatchNorm(model, dataset, o, stderr);
        using var trainer = new Trainer(model, o.Device, o.Settings, group);
        long iteration = resume is null ? 0 : trainer.Restore(resume);
        int rank = group?.Rank ?? 0, ranks = group?.WorldSize ?? 1;
        var sampler = new ShardedSampler(dataset.Count, rank, ranks, shuffle: true, seed: (ulong)o.Settings.Seed);
        if (resume is not null && TrainingStateCodec.Sampler(resume) is SamplerState s) sampler.Restore(s);
        iteration = trainer.Synchronize(iteration, sampler, dataset.Count);
        if (resume is not null) stdout.WriteLine($"Resuming from {o.ModelPath} at iteration {iteration}");
        if (iteration >= o.Settings.Iterations)
        {
            stdout.WriteLine($"{o.ModelPath} already trained for {iteration} iterations " +
                "(pass --override to start over)");
            return iteration;
        }

        stdout.WriteLine($"Training {string.Join("+", model.Config.Backbones)} on {dataset.Count} images " +
            $"({dataset.Categories.Count} categories), " +
            $"batch {o.Settings.Batch * ranks}, {o.Settings.Iterations} iterations, " +
            $"{(o.Settings.MixedPrecision is ScalarType t ? t.ToString() : "fp32")} on {o.Device.type}" +
            (group is null ? "" : $" × {ranks} processes ({o.Settings.Batch} images each, {group.Backend})"));
        var loaderOptions = new LoaderOptions(o.Workers, 4, o.Settings.Seed, o.SkipBadImages,
            Pin: o.Device.type == TorchSharp.DeviceType.CUDA)
        {
            Rotated = rotated,
            DecodeDevice = o.GpuDecode ? o.Device : null,
            Shard = (rank, ranks),
            WorkerCudaDevice = group is not null && o.Device.type == TorchSharp.DeviceType.CUDA && o.Device.index >= 0
                ? o.Device.index : null,
        };
        using var loader = DetectionLoader.Create(dataset, Augmentation.ForTraining(o.Augment),
            DetectionLoader.Training(sampler, o.Settings.Batch), loaderOptions, stderr, iteration);
        using var board = o.LogDir is null || !master ? null : new TensorBoardWriter(o.LogDir);
        using var poster = o.PostMetrics is null || !master ? null : new MetricsPoster(new Uri(o.PostMetrics));
        var results = o.LogDir is null || !master ? null : new TrainingResults(o.LogDir);
        string bestPath = BestModelPath(o.ModelPath);
        var log = new ProgressLog(stdout, o.ProgressBar, TimeSpan.FromSeconds(0.5));
        var hooks = new TrainingHooks
        {
            Log = log.Line,
            SaveCheckpoint = master ? state => Checkpoint.Save(o.ModelPath, model, state) : null,
            SaveBest = master && val is not null ? (state, map) => Checkpoint.Save(bestPath, model, state) : null,
            Metrics = (step, values) =>
            {
                o.OnMetrics?.Invoke(step, values);
                foreach (var (name, value) in values) board?.AddScalar(name, value, step);
                board?.Flush();
                results?.Add(step, values);
                // posted in the background: a slow or dead metrics server never stalls training
                poster?.PostAsync(values.Select(kv => (kv.Key, kv.Value))).ContinueWith(t =>
                {
                    foreach (var warning in t.IsCompletedSuccessfully ? t.Result
                        : [t.Exception?.GetBaseException().Message ?? "posting metrics failed"])
                        lock (stderr) stderr.WriteLine($"warning: {warning}");
                }, TaskScheduler.Default);
            },
            Validate = val is null ? null : step =>
            {
                var size = model.Config.Inference;
                var options = new InferenceOptions(o.Device, o.Settings.Batch, size.Resize, size.MaxSize,
                    o.Settings.MixedPrecision, o.Workers, GpuDecode: o.GpuDecode);
                var detections = InferenceJob.Detect(model, val.Value.Data, options, stderr, group: group);
                if (!master) return null; // rank 0 scores what every rank detected
                var result = CocoEvaluator.Evaluate(val.Value.Coco, detections, rotated ? IouType.Segm : IouType.Bbox);
                log.Line($"Validation at iteration {step} ({val.Value.Data.Count} images, " +
                    $"{detections.Count} detections):");
                stdout.Write(result.SummaryText());
                return new Dictionary<string, double> { ["mAP"] = result.Stats[0], ["mAP50"] = result.Stats[1] };
            },
            Progress = (i, n, seconds) =>
            {
                log.Progress(i, n, TimeSpan.FromSeconds(seconds));
                o.AfterIteration?.Invoke(i);
            },
        };
        // a rank other than 0 ignores Ctrl-C (rank 0 saves, then stops the job); all stop when the job ends early
        using var ended = group is null ? null
            : CancellationTokenSource.CreateLinkedTokenSource(master ? stop : CancellationToken.None, group.Ended);
        iteration = trainer.Run(loader, iteration, hooks, ended?.Token ?? stop);
        log.Finish();
        if (group is not null && group.EndedBy() is Exception gone) throw gone;
        if (master && group is not null && iteration < o.Settings.Iterations)
            group.Stop($"rank 0 stopped at iteration {iteration} and saved {o.ModelPath}");
        stdout.WriteLine(trainer.OutOfPatience
            ? $"Stopped early at iteration {iteration}; checkpoint saved to {o.ModelPath}"
            : iteration < o.Settings.Iterations
            ? $"Stopped at iteration {iteration}; checkpoint saved to {o.ModelPath} (run the same command to resume)"
            : $"Saved {o.ModelPath}");
        if (trainer.Best is var (map, at))
            stdout.WriteLine($"Best validation mAP {map:0.0000} at iteration {at}: {bestPath}");
        if (results is not null)
        {
            results.Save();
            stdout.WriteLine($"Results: {results.CsvPath}, {results.PlotPath}");
        }
        return iteration;
    }

    /// <summary>Where the best model by validation mAP is kept: MODEL.best.pth beside MODEL.pth (same extension).
    /// </summary>
    public static string BestModelPath(string modelPath) =>
        Path.Combine(Path.GetDirectoryName(modelPath) ?? "",
            Path.GetFileNameWithoutExtension(modelPath) + ".best" + Path.GetExtension(modelPath));

    /// <summary>Without ImageNet weights, frozen batch norm would be the identity and a deep backbone unnormalised:
    /// its statistics are taken from one batch of (up to 16) training images instead.</summary>
    static void CalibrateBatchNorm(RetinaNetModel model, DetectionDataset dataset, TrainingJobOptions o,
        TextWriter warnings)
    {
        var sampler = new ShardedSampler(dataset.Count, shuffle: true, seed: (ulong)o.Settings.Seed + 1);
        var options = new LoaderOptions(o.Workers, 1, o.Settings.Seed, o.SkipBadImages, Pin: false);
        using var loader = DetectionLoader.Create(dataset,
            Augmentation.ForInference(o.Augment.JitterMin, o.Augment.MaxSize),
            DetectionLoader.OnePass(sampler, Math.Min(dataset.Count, 16)), options, warnings);
        using var host = loader.Next() ?? throw new BadInputException(o.Annotations, "no images to train on");
        using var batch = DeviceBatch.From(host, o.Device);
        model.CalibrateBatchNorm(batch.Images);
    }

    /// <summary>The model to train and, when resuming, its saved training state (stems not yet frozen).</summary>
    public static (RetinaNetModel Model, TrainingState? Resume) Prepare(TrainingJobOptions o, TextWriter stdout)
    {
        if (File.Exists(o.ModelPath) && !o.Override)
        {
            var loaded = Checkpoint.Load(o.ModelPath);
            return (loaded.Model, loaded.State ?? new TrainingState(0));
        }
        if (o.FineTune is not null)
        {
            using var source = Checkpoint.Load(o.FineTune).Model;
            var config = source.Config with { Classes = o.Config.Classes };
            var model = new RetinaNetModel(config);
            model.Initialize(o.Settings.Seed);
            // every weight but the class output layer (whose shape follows the class count) carries over
            var classOutput = model.ClassOutputPrefix;
            var weights = StateDict.Of(source).Where(kv => !kv.Key.StartsWith(classOutput))
                .ToDictionary(kv => kv.Key, kv => kv.Value);
            StateDict.Load(model, weights, o.FineTune, skipTarget: k => k.StartsWith(classOutput));
            model.InitializeClassOutput(o.Settings.Seed);
            stdout.WriteLine($"Fine-tuning from {o.FineTune} ({source.Config.Classes} → {config.Classes} classes, " +
                "class output re-initialised)");
            return (model, null);
        }
        var fresh = new RetinaNetModel(o.Config);
        fresh.Initialize(o.Settings.Seed);
        if (o.BackboneWeights is "none") return (fresh, null);
        foreach (var backbone in o.Config.Backbones.Distinct())
        {
            var path = o.BackboneWeights ?? PretrainedWeights.Locate(backbone, stdout);
            BackboneWeights.Load(fresh, path);
        }
        return (fresh, null);
    }
}
