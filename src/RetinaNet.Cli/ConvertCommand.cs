using RetinaNet.Data.Converters;

namespace RetinaNet.Cli;

/// <summary>(ours) <c>retinanet convert</c>: Pascal VOC, YOLO or DOTA annotations into the COCO JSON that train and
/// infer read (DOTA's oriented objects as rotated boxes).</summary>
static class ConvertCommand
{
    public static CommandSpec Spec()
        => new("convert",
        "(ours) Import Pascal VOC (XML), YOLO (txt) or DOTA (oriented, txt) annotations into a COCO JSON file.",
        [("source", "folder with the annotations and images (searched recursively)")],
        [
            new("--from", Arity.One, "annotation format of SOURCE", "voc|yolo|dota", Required: true),
            new("--output", Arity.One, "COCO JSON file to write", "path", Required: true),
            new("--images-root", Arity.One,
                "folder the COCO file_names are relative to: pass it as --images to train (default: SOURCE)", "dir"),
        ]);

    public static int Run(ParsedArgs a, TextWriter stdout)
    {
        string source = a.Positionals["source"];
        Validation.ExistingDirectory("SOURCE", source);
        string format = a.String("--from")!;
        if (format is not ("voc" or "yolo" or "dota")) throw new UsageException("--from: expected voc, yolo or dota, "
            + $"got '{format}'");
        string output = a.String("--output")!;
        Validation.Extension("--output", output, ".json");
        Validation.WritableParent("--output", output);
        string imagesRoot = a.String("--images-root") ?? source;
        Validation.ExistingDirectory("--images-root", imagesRoot);

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
            + $"--images {imagesRoot}");
        return CommandLine.Ok;
    }
}
