using RetinaNet.Distributed;
using RetinaNet.Inference;
using static RetinaNet.Cli.Validation;

namespace RetinaNet.Cli;

/// <summary><c>retinanet infer</c>: options checked, then the library's <see cref="InferenceJob"/> with the model file
/// opened by <see cref="ModelFiles"/>: a checkpoint on every rank, an export in one process (ONNX Runtime picks its
/// own device).</summary>
static class InferCommand
{
    public static int Run(ParsedArgs a, CommandContext context)
    {
        string model = a.Positionals["model"];
        ModelArgument.Check(model, [.. ModelFiles.CheckpointExtensions, .. ModelFiles.ExportedExtensions]);
        if (a.Has("--video")) return InferVideo.Run(a, context, ModelArgument.Local(model, context.Stderr));
        if (a.Has("--save-video")) throw new UsageException("--save-video needs --video (the video to detect in)");
        if (a.Has("--annotations"))
        {
            ExistingFile("--annotations", a.String("--annotations"), ".json");
            ExistingDirectory("--images", a.String("--images")); // the annotations' file names are relative to it
        }
        else ImagesExist(a.String("--images"));
        foreach (var output in a.Strings("--output").Where(o => o != InferenceJob.StandardOutput))
        {
            Extension("--output", output, ".json");
            WritableParent("--output", output);
        }
        Positive(a, "--batch");
        Positive(a, "--resize"); Positive(a, "--max-size");
        InferenceSettings(a);
        var requested = DeviceChoice.Resolve(a.String("--device"));
        model = ModelArgument.Local(model, context.Stderr);
        bool exported = ModelFiles.IsExported(model);
        if (exported
            && a.Given.FirstOrDefault(o => o is "--score-threshold" or "--top-n" or "--nms"
            or "--detections") is string fixedOption)
            throw new UsageException($"{fixedOption}: post-processing is part of an exported model; set it when "
                + $"exporting (retinanet export ... {fixedOption} VALUE)");
        var format = a.String("--output-format")!;
        if (format is not ("odtk" or "coco-results")) throw new UsageException("--output-format: expected odtk or "
            + $"coco-results, got '{format}'");
        // a list's or a glob's images, checked before the model loads (a folder's are listed when the job starts)
        if (!a.Has("--annotations")
            && !Directory.Exists(a.String("--images"))) Data.ImageInputs.Resolve(a.String("--images")!);
        if (exported) return Infer(a, context, model, format,
            Placement.Alone(requested, Positive(a, "--batch"), a.Int("--workers")));
        GpuDecode(a, requested);
        return Launch.Run(a, context, p => Infer(a, context, model, format, p));
    }

    static void ImagesExist(string? images)
    {
        if (string.IsNullOrEmpty(images)) throw new UsageException("--images: a folder, an image, a glob or a list "
            + "file is needed");
        if (Directory.Exists(images) || File.Exists(images) || images.IndexOfAny(['*', '?']) >= 0) return;
        throw new UsageException($"--images: {images} does not exist; give a folder of images, an image file, a glob "
            + "such as 'photos/*.jpg', or a .txt file listing image paths");
    }

    static int Infer(ParsedArgs a, CommandContext context, string model, string format, Placement placement)
    {
        var (batch, workers) = (placement.RankBatch, placement.Workers);
        var run = new ExecutionOptions(placement.Device, a.Flag("--full-precision"), a.Flag("--cuda-graphs"), batch);
        using var detector = ModelFiles.Open(model, run, stored => InferenceSettings(a, stored), context.Stderr);
        ModelFiles.CheckRotated(model, detector.Rotated, a.Flag("--rotated-bbox"));
        var settings = detector.Settings; // the input size: given, else the model's, else the default
        var job = new InferenceJobOptions(model, a.String("--images")!, a.String("--annotations"),
            a.Strings("--output").ToArray(), format,
            new InferenceOptions(placement.Device, batch, settings.Resize, settings.MaxSize, run.MixedPrecision,
                workers,
                SkipBadImages: a.Flag("--skip-bad-images"), GpuDecode: a.Flag("--with-dali"),
                    CudaGraphs: run.CudaGraphs));
        InferenceJob.Run(detector, job, placement.Output(context.Stdout), context.Stderr, placement.Group);
        return CommandLine.Ok;
    }
}
