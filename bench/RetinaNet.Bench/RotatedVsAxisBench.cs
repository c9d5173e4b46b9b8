using System.Diagnostics;
using RetinaNet.Boxes;
using RetinaNet.Data.Coco;
using RetinaNet.Data.Synthetic;
using RetinaNet.Evaluation;
using RetinaNet.Inference;
using RetinaNet.Training;
using static TorchSharp.torch;

namespace RetinaNet.Bench;

/// <summary>Does a rotated model earn its keep ([w2 5/7] "it learns")? The rotated shapes (bars and plates at all
/// angles) train two ResNet18FPN models with the same seed, schedule and data: a rotated one on the rotated boxes,
/// an axis-aligned one on each box's enclosing axis-aligned box (what a user without rotated boxes would
/// annotate). Both are scored on held-out images as polygons against the rotated ground truth (segm AP; an
/// axis-aligned detection is its rectangle). One JSON line per model.
///   RetinaNet.Bench rotated-vs-axis [--images 96] [--size 128] [--iters 250] [--batch 4] [--lr 0.0015]
///     [--weights none|FILE] [--dir /tmp/rotated-vs-axis]</summary>
static class RotatedVsAxisBench
{
    public static void Run(Func<string, string, string> opt)
    {
        var device = cuda.is_available() ? CUDA : CPU;
        int count = int.Parse(opt("images", "96")), size = int.Parse(opt("size", "128")),
            iters = int.Parse(opt("iters", "250"));
        int batch = int.Parse(opt("batch", "4"));
        string dir = opt("dir", Path.Combine(Path.GetTempPath(), "rotated-vs-axis"));
        var (train, val, images, _) = ShapesDataset.WriteDemo(dir, count, size, rotated: true);
        var axis = new CocoFile(Path.Combine(dir, "axis.json"), train.Images,
            train.Annotations.Select(Enclosing).ToList(), train.Categories);
        axis.Save(axis.Path);

        foreach (var rotated in new[] { true, false })
        {
            string model = Path.Combine(dir, rotated ? "rotated.pth" : "axis.pth");
            var clock = Stopwatch.StartNew();
            string? weights = opt("weights", "none") is var w && w != "none" ? w : null;
            var options = ShapesRecipe.Training(model, rotated ? train : axis, images, device, rotated, size, iters,
                batch, double.Parse(opt("lr", "0.0015")), seed: 0, weights);
            TrainingJob.Run(options, TextWriter.Null, Console.Error, CancellationToken.None);
            double seconds = clock.Elapsed.TotalSeconds;
            var detections = ShapesRecipe.Detect(model, val, images, device, batch, Console.Error);
            // an axis-aligned detection scored as the polygon of its rectangle
            var polygons = detections.Select(d => d.Theta is null ? CocoDetections.Rotated(d, 0) : d).ToList();
            var result = CocoEvaluator.Evaluate(val, polygons, IouType.Segm);
            Console.WriteLine($"{{\"bench\": \"rotated_vs_axis\", " +
                $"\"model\": \"{(rotated ? "rotated" : "axis-aligned")}\", " +
                $"\"device\": \"{device.type}\", \"images\": {count}, \"size\": {size}, \"iters\": {iters}, " +
                $"\"batch\": {batch}, " +
                $"\"weights\": \"{Path.GetFileName(opt("weights", "none"))}\", \"train_s\": {seconds:F1}, " +
                $"\"segm_ap\": {result.Stats[0]:F4}, \"segm_ap50\": {result.Stats[1]:F4}, " +
                $"\"segm_ap75\": {result.Stats[2]:F4}}}");
        }
    }

    /// <summary>The rotated annotation's enclosing axis-aligned box, clipped to the image.</summary>
    static CocoAnnotation Enclosing(CocoAnnotation a)
    {
        var c = new RotatedRectangle(a.X, a.Y, a.W, a.H, a.Theta ?? 0).Corners();
        double x1 = Math.Max(0, Enumerable.Range(0, 4).Min(i => c[2 * i])),
            y1 = Math.Max(0, Enumerable.Range(0, 4).Min(i => c[2 * i + 1]));
        double x2 = Enumerable.Range(0, 4).Max(i => c[2 * i]), y2 = Enumerable.Range(0, 4).Max(i => c[2 * i + 1]);
        return a with { X = x1, Y = y1, W = x2 - x1, H = y2 - y1, Area = (x2 - x1) * (y2 - y1), Theta = null,
            Segmentation = null };
    }
}
