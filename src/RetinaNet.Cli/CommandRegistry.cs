namespace RetinaNet.Cli;

/// <summary>One command of the command line: its options (built for the number of GPUs seen) and what runs
/// it.</summary>
public sealed record CliCommand(string Name, string Help, Func<int, CommandSpec> Spec,
    Func<ParsedArgs, CommandContext, int> Run, bool NeedsGpuCount = false);

/// <summary>Every command, in the order <c>--help</c> lists them. A new command is one line here and a file of its
/// own.</summary>
public static class CommandRegistry
{
    public static readonly IReadOnlyList<CliCommand> All =
    [
        new("train", "train a network", TrainCommand.Spec, TrainCommand.Run, NeedsGpuCount: true),
        new("infer", "run inference (and COCO evaluation with --annotations)",
            InferCommand.Spec, InferCommand.Run, NeedsGpuCount: true),
        new("export", "export a model to ONNX / a TensorRT engine",
            _ => ExportCommand.Spec(), (a, c) => ExportCommand.Run(a, c.Stdout)),
        new("evaluate", "(ours) COCO bbox or segm evaluation of a detections file (pycocotools' numbers)",
            _ => EvaluateCommand.Spec(), (a, c) => EvaluateCommand.Run(a, c.Stdout)),
        new("draw", "(ours) draw detections (and ground truth) onto the images",
            _ => DrawCommand.Spec(), (a, c) => DrawCommand.Run(a, c.Stdout)),
        new("demo", "(ours) train, evaluate and draw on a synthetic dataset, nothing to download",
            _ => DemoCommand.Spec(), (a, c) => DemoCommand.Run(a, c.Stdout)),
        new("convert", "(ours) import Pascal VOC, YOLO or DOTA annotations as COCO JSON",
            _ => ConvertCommand.Spec(), (a, c) => ConvertCommand.Run(a, c.Stdout)),
        new("serve", "(ours) serve a model over HTTP (detection API, page, metrics)",
            _ => ServeCommand.Spec(), ServeCommand.Run),
        new("summary", "(ours) print a model's structure and run it once on a synthetic image",
            _ => SummaryCommand.Spec(), (a, c) => SummaryCommand.Run(a, c.Stdout)),
        new("models", "(ours) the published COCO checkpoints, usable as odtk:NAME wherever a model file goes",
            _ => ModelsCommand.Spec(), (a, c) => ModelsCommand.Run(c.Stdout)),
        new("doctor", "(ours) what this machine has for the toolkit, and how to get what is missing",
            _ => DoctorCommand.Spec(), (a, c) => DoctorCommand.Run(a, c.Stdout)),
    ];

    public static CliCommand? Find(string name) => All.FirstOrDefault(c => c.Name == name);
}
