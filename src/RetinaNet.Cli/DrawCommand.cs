using RetinaNet.Data;
using RetinaNet.Data.Coco;
using RetinaNet.Data.Imaging;
using RetinaNet.Evaluation;
using static RetinaNet.Cli.SharedOptions;
using static RetinaNet.Cli.Validation;

namespace RetinaNet.Cli;

/// <summary>draw's command line, read once.</summary>
sealed record DrawArguments(string Images, string Detections, string? Annotations, string Out, double MinScore);

/// <summary><c>retinanet draw</c> (ours): pictures of detections (and ground truth) for every image that has
/// any.</summary>
static class DrawCommand
{
    static readonly Option<string> Detections = Option.Required("--detections",
        "detections: ODTK's infer output, or a COCO results list (then --annotations names the files)", "path");
    static readonly Option<string?> Annotations = Option.OptionalString("--annotations",
        "COCO annotations: file names, category names and ground truth to draw", "path");
    static readonly Option<string> Out = Option.Required("--out", "output folder", "dir");
    static readonly Option<double> MinScore = Option.Double("--min-score", "draw detections scoring at least this",
        "score", 0.3);

    public static CommandSpec Spec()
        => new("draw", "(ours) Draw detections (and ground truth in green) onto the images, as PNG files.",
        [],
        [Images, Detections, Annotations, Out, MinScore]);

    static DrawArguments Bind(ParsedArgs a)
        => new(a.Get(Images), a.Get(Detections), a.Get(Annotations), a.Get(Out), a.Get(MinScore));

    public static int Run(ParsedArgs parsed, TextWriter stdout)
    {
        var a = Bind(parsed);
        string images = a.Images, detectionsPath = a.Detections, outDir = a.Out;
        ExistingDirectory(Images.Name, images);
        ExistingFile(Detections.Name, detectionsPath, ".json");
        string? annotations = a.Annotations;
        if (annotations is not null) ExistingFile(Annotations.Name, annotations, ".json");
        WritableDirectory(Out.Name, outDir);
        double minScore = a.MinScore;
        var detections = DetectionsFile.Read(detectionsPath);
        var groundTruth = annotations is null ? null : CocoFile.Load(annotations);
        CocoFile listing = groundTruth ?? ImageListOf(detectionsPath);
        if (groundTruth is not null) DetectionsFile.Validate(detections, groundTruth, detectionsPath);
        Directory.CreateDirectory(outDir);
        int written = DetectionPictures.WriteAll(listing, images, detections, groundTruth, outDir, minScore);
        stdout.WriteLine($"Wrote {written} pictures to {outDir}");
        return CommandLine.Ok;
    }

    /// <summary>ODTK's detection files list their images and categories; a plain results list does not.</summary>
    static CocoFile ImageListOf(string detectionsPath)
    {
        var bytes = File.ReadAllBytes(detectionsPath);
        if (bytes.SkipWhile(b => b is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t' or 0xEF or 0xBB
            or 0xBF).FirstOrDefault() != (byte)'{')
            throw new BadInputException(detectionsPath,
                $"a COCO results list names no image files; pass {Annotations.Name} with the images' COCO file");
        var full = CocoFile.Parse(bytes, detectionsPath);
        return new CocoFile(full.Path, full.Images, [], full.Categories);
    }
}
