using RetinaNet.Boxes;
using RetinaNet.Data;
using RetinaNet.Data.Coco;
using RetinaNet.Data.Transforms;
using RetinaNet.Inference;
using RetinaNet.Model;
using static TorchSharp.torch;

namespace RetinaNet.Training;

/// <summary>How the synthetic shapes (<see cref="Data.Synthetic.ShapesDataset.WriteDemo"/>) are trained and scored:
/// a ResNet18FPN on square images at their own size, frozen ImageNet features where weights are given, ODTK's
/// warm-up and one step down at three quarters, no colour jitter; then the held-out images detected as
/// <c>infer</c> runs the model. <c>retinanet demo</c> and the rotated-vs-axis bench share it.</summary>
public static class ShapesRecipe
{
    /// <param name="backboneWeights">ImageNet ResNet18 weights (the backbone then stays frozen), or null for random
    /// weights.</param>
    public static TrainingJobOptions Training(string modelPath, CocoFile train, string images, Device device,
        bool rotated, int size, int iterations, int batch, double lr, int seed, string? backboneWeights) => new()
    {
        ModelPath = modelPath, Annotations = train.Path, Images = images, Device = device, Override = true,
        BackboneWeights = backboneWeights ?? "none",
        FreezeBackbone = backboneWeights is not null, // CPU time goes to the FPN and heads
        Config = new DetectorConfig
        {
            Backbones = ["ResNet18FPN"], Classes = train.Categories.Count,
            Anchors = new AnchorConfig { Angles = rotated ? AnchorConfig.DefaultAngles : [] },
        },
        Settings = new TrainingSettings
        {
            Iterations = iterations, Batch = batch, Seed = seed,
            Schedule = new LearningRateSchedule(lr, Math.Min(50, iterations / 4), [iterations * 3 / 4]),
            CheckpointInterval = TimeSpan.FromMinutes(10), LogInterval = TimeSpan.FromSeconds(15),
            MixedPrecision = ExecutionOptions.MixedPrecisionFor(device, fullPrecision: false),
        },
        Augment = new AugmentationOptions(size, size, size, Brightness: 0, Contrast: 0, Saturation: 0, Hue: 0),
        Resize = size, MaxSize = size,
    };

    /// <summary>The detections of the model at <paramref name="modelPath"/> on <paramref name="val"/>'s images, as
    /// <c>infer</c> runs it (weights converted for the device, the stored input size).</summary>
    public static List<CocoDetection> Detect(string modelPath, CocoFile val, string images, Device device, int batch,
        TextWriter log)
    {
        var run = new ExecutionOptions(device, MaxBatch: batch);
        using var detector = ModelFiles.Open(modelPath, run, stored => stored, log);
        var dataset = DetectionDataset.FromCoco(val, images, log);
        var input = new InferenceOptions(device, batch, detector.Settings.Resize, detector.Settings.MaxSize,
            run.MixedPrecision);
        return InferenceJob.Detect(detector, dataset, input, log);
    }
}
