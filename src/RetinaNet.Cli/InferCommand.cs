using RetinaNet.Distributed;
using RetinaNet.Inference;
using RetinaNet.Model;
using static RetinaNet.Cli.SharedOptions;
using static RetinaNet.Cli.Validation;

namespace RetinaNet.Cli;

/// <summary>infer's command line, read once: the values given or defaulted; <see cref="GivenImages"/> and
/// <see cref="GivenOutput"/> only when given (video has its own default output); <see cref="Given"/>, the
/// post-processing and input size given (they win over the model's); <see cref="FixedGiven"/>, the first
/// post-processing option given (an exported model has its own).</summary>
sealed record InferArguments(string Model, string Images, string? GivenImages, string? Annotations,
    IReadOnlyList<string> Output, IReadOnlyList<string>? GivenOutput, int Batch, int Resize, int MaxSize,
    bool WithDali, bool FullPrecision, bool RotatedBbox, string OutputFormat, bool CudaGraphs, string? Video,
    string? SaveVideo, bool SkipBadImages, InferenceOverrides Given, Option? FixedGiven,
    LaunchArguments Launch);

/// <summary><c>retinanet infer</c>: options checked, then the library's <see cref="InferenceJob"/> with the model file
/// opened by <see cref="ModelFiles"/>: a checkpoint on every rank, an export in one process (ONNX Runtime picks its
/// own device).</summary>
static class InferCommand
{
    public static readonly Option<string?> Annotations = Option.OptionalString("--annotations",
        "evaluate using provided annotations", "annotations");
    public static readonly Option<IReadOnlyList<string>> Output = Option.Strings("--output", Arity.OneOrMore,
        "save detections to specified JSON file(s); - writes JSON Lines to stdout", "file", "detections.json");
    static readonly Option<string> OutputFormat = Option.String("--output-format",
        "(ours) odtk ({annotations, images, categories}) or coco-results (a plain list)", "format", "odtk");
    public static readonly Option<bool> CudaGraphs = Option.Flag("--cuda-graphs", "(ours) replay forward and decode " +
        "as CUDA graphs, one per batch shape (up to 4): much lower latency at small batches, more GPU memory");
    public static readonly Option<string?> Video = Option.OptionalString("--video", "(ours) detect in a video file " +
        "or stream ffmpeg opens (rtsp://, http://...) instead of --images: JSON Lines per frame to --output " +
        "(default detections.jsonl)", "source");
    public static readonly Option<string?> SaveVideo = Option.OptionalString("--save-video",
        "(ours) with --video: write the frames with their boxes drawn (.mp4: H.264; .mkv: lossless)", "path");

    public static CommandSpec Spec(int defaultBatch) => new("infer",
        "Run inference (and COCO evaluation when annotations are given).",
        [("model", "path to model (.pth checkpoint, .safetensors, exported .onnx, or .plan/.engine built by export)")],
        [
            Images.WithHelp("images: a folder, an image, a glob ('photos/*.jpg') or a .txt list of paths"),
            Annotations, Output, Batch.WithDefault(defaultBatch), .. InputSize(ModelsSetting), WithDali,
            FullPrecision, RotatedBbox, OutputFormat, CudaGraphs, Video, SaveVideo, .. Loading(), .. MultiGpu(),
            .. Postprocessing(ModelsSetting), Device,
        ]);

    static InferArguments Bind(ParsedArgs a) => new(a.Positionals["model"], a.Get(Images),
        a.Has(Images) ? a.Get(Images) : null, a.Get(Annotations), a.Get(Output), a.Has(Output) ? a.Get(Output) : null,
        a.Get(Batch), a.Get(Resize), a.Get(MaxSize), a.Get(WithDali), a.Get(FullPrecision), a.Get(RotatedBbox),
        a.Get(OutputFormat), a.Get(CudaGraphs), a.Get(Video), a.Get(SaveVideo), a.Get(SkipBadImages),
        Overrides(a), a.FirstGiven(ScoreThreshold, TopN, Nms, Detections),
        SharedOptions.Launch(a));

    public static int Run(ParsedArgs parsed, CommandContext context)
    {
        var a = Bind(parsed);
        string model = a.Model;
        ModelArgument.Check(model, [.. ModelFiles.CheckpointExtensions, .. ModelFiles.ExportedExtensions]);
        if (a.Video is string video)
            return InferVideo.Run(a, video, context, ModelArgument.Local(model, context.Stderr));
        if (a.SaveVideo is not null)
            throw new UsageException($"{SaveVideo.Name} needs {Video.Name} (the video to detect in)");
        if (a.Annotations is string annotations)
        {
            ExistingFile(Annotations.Name, annotations, ".json");
            ExistingDirectory(Images.Name, a.Images); // the annotations' file names are relative to it
        }
        else ImagesExist(a.Images);
        foreach (var output in a.Output.Where(o => o != InferenceJob.StandardOutput))
        {
            Extension(Output.Name, output, ".json");
            WritableParent(Output.Name, output);
        }
        Positive(Batch, a.Batch);
        Positive(Resize, a.Resize); Positive(MaxSize, a.MaxSize);
        InferenceSettings(a.Given);
        var requested = DeviceChoice.Resolve(a.Launch.Device);
        model = ModelArgument.Local(model, context.Stderr);
        bool exported = ModelFiles.IsExported(model);
        if (exported && a.FixedGiven is Option fixedOption)
            throw new UsageException($"{fixedOption.Name}: post-processing is part of an exported model; set it when "
                + $"exporting (retinanet export ... {fixedOption.Name} VALUE)");
        var format = a.OutputFormat;
        if (format is not ("odtk" or "coco-results")) throw new UsageException($"{OutputFormat.Name}: expected odtk or "
            + $"coco-results, got '{format}'");
        // a list's or a glob's images, checked before the model loads (a folder's are listed when the job starts)
        if (a.Annotations is null && !Directory.Exists(a.Images)) Data.ImageInputs.Resolve(a.Images);
        if (exported) return Infer(a, context, model, format,
            Placement.Alone(requested, Positive(Batch, a.Batch), a.Launch.Workers));
        GpuDecode(a.WithDali, requested);
        return Launch.Run(a.Launch, context, p => Infer(a, context, model, format, p));
    }

    static void ImagesExist(string? images)
    {
        if (string.IsNullOrEmpty(images)) throw new UsageException($"{Images.Name}: a folder, an image, a glob or a "
            + "list file is needed");
        if (Directory.Exists(images) || File.Exists(images) || images.IndexOfAny(['*', '?']) >= 0) return;
        throw new UsageException($"{Images.Name}: {images} does not exist; give a folder of images, an image file, a "
            + "glob such as 'photos/*.jpg', or a .txt file listing image paths");
    }

    static int Infer(InferArguments a, CommandContext context, string model, string format, Placement placement)
    {
        var (batch, workers) = (placement.RankBatch, placement.Workers);
        var run = new ExecutionOptions(placement.Device, a.FullPrecision, a.CudaGraphs, batch);
        using var detector = ModelFiles.Open(model, run, stored => InferenceSettings(a.Given, stored), context.Stderr);
        ModelFiles.CheckRotated(model, detector.Rotated, a.RotatedBbox);
        var settings = detector.Settings; // the input size: given, else the model's, else the default
        var job = new InferenceJobOptions(model, a.Images, a.Annotations, a.Output.ToArray(), format,
            new InferenceOptions(placement.Device, batch, settings.Resize, settings.MaxSize, run.MixedPrecision,
                workers, SkipBadImages: a.SkipBadImages, GpuDecode: a.WithDali, CudaGraphs: run.CudaGraphs));
        InferenceJob.Run(detector, job, placement.Output(context.Stdout), context.Stderr, placement.Group);
        return CommandLine.Ok;
    }
}
