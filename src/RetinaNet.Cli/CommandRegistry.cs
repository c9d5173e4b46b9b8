namespace RetinaNet.Cli;

/// <summary>One command of the command line: its options (built for the number of GPUs seen) and what runs it.</summary>
public sealed record CliCommand(string Name, string Help, Func<int, CommandSpec> Spec, Func<ParsedArgs, int, TextWriter, int> Run, bool NeedsGpuCount = false);

/// <summary>Every command, in the order <c>--help</c> lists them. A new command is one line here and a file of its own.</summary>
public static class CommandRegistry
{
    public static readonly IReadOnlyList<CliCommand> All =
    [
        new("train", "train a network", CommandSpecs.Train, Commands.Train, NeedsGpuCount: true),
        new("infer", "run inference (and COCO evaluation with --annotations)", CommandSpecs.Infer, Commands.Infer, NeedsGpuCount: true),
        new("export", "export a model to ONNX / a TensorRT engine", _ => CommandSpecs.Export(), (a, _, o) => ExportCommand.Run(a, o)),
        new("evaluate", "(ours) COCO bbox evaluation of a detections file (pycocotools' numbers)", _ => EvaluateCommand.Spec(), (a, _, o) => EvaluateCommand.Run(a, o)),
        new("draw", "(ours) draw detections (and ground truth) onto the images", _ => DrawCommand.Spec(), (a, _, o) => DrawCommand.Run(a, o)),
        new("demo", "(ours) train, evaluate and draw on a synthetic dataset, nothing to download", _ => DemoCommand.Spec(), (a, _, o) => DemoCommand.Run(a, o)),
        new("convert", "(ours) import Pascal VOC or YOLO annotations as COCO JSON", _ => ConvertCommand.Spec(), (a, _, o) => ConvertCommand.Run(a, o)),
        new("summary", "(ours) print a model's structure and run it once on a synthetic image", _ => CommandSpecs.Summary(), (a, _, o) => Commands.Summary(a, o)),
    ];

    public static CliCommand? Find(string name) => All.FirstOrDefault(c => c.Name == name);
}
