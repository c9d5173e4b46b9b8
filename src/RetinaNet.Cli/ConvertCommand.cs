using RetinaNet.Data.Converters;

namespace RetinaNet.Cli;

/// <summary>convert's command line, read once.</summary>
sealed record ConvertArguments(string Source, string From, string Output, string? ImagesRoot);

/// <summary>(ours) <c>retinanet convert</c>: Pascal VOC, YOLO or DOTA annotations into the COCO JSON that train and
/// infer read (DOTA's oriented objects as rotated boxes).</summary>
static class ConvertCommand
{
    static readonly Option<string> From = Option.Required("--from", "annotation format of SOURCE", "voc|yolo|dota");
    static readonly Option<string> Output = Option.Required("--output", "COCO JSON file to write", "path");
    static readonly Option<string?> ImagesRoot = Option.OptionalString("--images-root",
        "folder the COCO file_names are relative to: pass it as --images to train (default: SOURCE)", "dir");

    public static CommandSpec Spec()
        => new("convert",
        "(ours) Import Pascal VOC (XML), YOLO (txt) or DOTA (oriented, txt) annotations into a COCO JSON file.",
        [("source", "folder with the annotations and images (searched recursively)")],
        [From, Output, ImagesRoot]);

    static ConvertArguments Bind(ParsedArgs a)
        => new(a.Positionals["source"], a.Get(From), a.Get(Output), a.Get(ImagesRoot));

    public static int Run(ParsedArgs parsed, TextWriter stdout)
    {
        var a = Bind(parsed);
        string source = a.Source;
        Validation.ExistingDirectory("SOURCE", source);
        string format = a.From;
        if (format is not ("voc" or "yolo" or "dota")) throw new UsageException($"{From.Name}: expected voc, yolo or "
            + $"dota, got '{format}'");
        string output = a.Output;
        Validation.Extension(Output.Name, output, ".json");
        Validation.WritableParent(Output.Name, output);
        string imagesRoot = a.ImagesRoot ?? source;
        Validation.ExistingDirectory(ImagesRoot.Name, imagesRoot);

        var result = format switch
        {
            "voc" => VocConverter.Convert(source, imagesRoot, output),
            "dota" => DotaConverter.Convert(source, imagesRoot, output),
            _ => YoloConverter.Convert(source, imagesRoot, output),
        };
        result.Coco.Save(output);
        var coco = result.Coco;
        string difficult = format is "voc" or "dota"
            ? $" ({result.DifficultObjects} marked difficult, kept as normal boxes)" : "";
        string rotated = format == "dota"
            ? " as rotated boxes (bbox [x, y, w, h, theta] and corners; evaluate detections with --iou-type segm)" : "";
        stdout.WriteLine($"wrote {output}: {coco.Images.Count} images ({result.ImagesWithoutObjects} without objects), "
            + $"{coco.Annotations.Count} objects{rotated}{difficult}, {coco.Categories.Count} categories; train with "
            + $"{SharedOptions.Images.Name} {imagesRoot}");
        return CommandLine.Ok;
    }
}
