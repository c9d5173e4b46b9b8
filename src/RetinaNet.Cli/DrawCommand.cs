using RetinaNet.Data;
using RetinaNet.Data.Coco;
using RetinaNet.Data.Imaging;
using RetinaNet.Evaluation;
using static RetinaNet.Cli.Validation;

namespace RetinaNet.Cli;

/// <summary><c>retinanet draw</c> (ours): pictures of detections (and ground truth) for every image that has
/// any.</summary>
static class DrawCommand
{
    public static CommandSpec Spec()
        => new("draw", "(ours) Draw detections (and ground truth in green) onto the images, as PNG files.",
        [],
        [
            new("--images", Arity.One, "path to images", "path", ["."]),
            new("--detections", Arity.One,
                "detections: ODTK's infer output, or a COCO results list (then --annotations names the files)", "path",
                Required: true),
            new("--annotations", Arity.One, "COCO annotations: file names, category names and ground truth to draw",
                "path"),
            new("--out", Arity.One, "output folder", "dir", Required: true),
            new("--min-score", Arity.One, "draw detections scoring at least this", "score", ["0.3"]),
        ]);

    public static int Run(ParsedArgs a, TextWriter stdout)
    {
        string images = a.String("--images")!, detectionsPath = a.String("--detections")!, outDir = a.String("--out")!;
        ExistingDirectory("--images", images);
        ExistingFile("--detections", detectionsPath, ".json");
        string? annotations = a.String("--annotations");
        if (annotations is not null) ExistingFile("--annotations", annotations, ".json");
        WritableDirectory("--out", outDir);
        double minScore = a.Double("--min-score");
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
                "a COCO results list names no image files; pass --annotations with the images' COCO file");
        var full = CocoFile.Parse(bytes, detectionsPath);
        return new CocoFile(full.Path, full.Images, [], full.Categories);
    }
}
