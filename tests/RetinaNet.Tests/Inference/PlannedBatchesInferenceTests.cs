using RetinaNet.Checkpoints;
using RetinaNet.Cli;
using RetinaNet.Data;
using RetinaNet.Data.Coco;
using RetinaNet.Inference;
using Xunit;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Inference;

/// <summary>Batches planned as on a GPU (<see cref="InferenceOptions.NewShapePixels"/>), run on the CPU with the
/// trained demo model: a last batch filled with a repeat of its first image gives every image its own detections,
/// once, as the unplanned pass does.</summary>
[Collection("global torch RNG")]
public class PlannedBatchesInferenceTests
{
    [Fact]
    public void AFilledLastBatchGivesEachImageItsDetectionsOnce()
    {
        var demo = TrainedDemo.Result;
        Assert.True(demo.ExitCode == CommandLine.Ok, demo.Output);
        var val = CocoFile.Load(demo.ValAnnotations);
        var dataset = DetectionDataset.FromCoco(val, demo.Images, TextWriter.Null);
        using var model = Checkpoint.Load(demo.Model).Model;
        // 24 held-out images in batches of 5: the last batch holds 4, the planned pass fills it with a fifth
        Assert.Equal(24, dataset.Count);
        var options = new InferenceOptions(CPU, 5, 128, 128);
        var plain = InferenceJob.Detect(model, dataset, options, TextWriter.Null);
        var planned = InferenceJob.Detect(model, dataset, options with { NewShapePixels = 1L << 40 }, TextWriter.Null);

        Assert.True(plain.Count > 24, $"{plain.Count} detections: too few to compare");
        Assert.Equal(plain.Select(d => (d.ImageId, d.CategoryId)), planned.Select(d => (d.ImageId, d.CategoryId)));
        foreach (var (a, b) in plain.Zip(planned))
        {
            Assertions.Close(a.Score, b.Score, 1e-5, $"score of image {a.ImageId}");
            Assertions.Close(a.X, b.X, 1e-3, $"x of image {a.ImageId}");
            Assertions.Close(a.W, b.W, 1e-3, $"width of image {a.ImageId}");
        }
    }
}
