using System.Diagnostics;
using RetinaNet.Data;
using RetinaNet.Data.Loading;
using RetinaNet.Data.Transforms;
using RetinaNet.Model;
using static TorchSharp.torch;

namespace RetinaNet.Export.Quantization;

/// <summary>The calibration images and how they are fed: <paramref name="Batches"/> × <paramref name="Batch"/> image
/// files drawn from every image under <paramref name="ImagesDir"/> in a seeded shuffle (ODTK shuffles its calibration
/// files too; fewer if the folder has fewer), through the loader exactly as <c>infer</c> feeds the exported model with
/// the model's --resize and --max-size: resized to fit the fixed <paramref name="Height"/> × <paramref name="Width"/>
/// input, padded to it, normalised on <paramref name="Device"/>.</summary>
public sealed record CalibrationData(string ImagesDir, int Batch, int Batches, int Height, int Width, Device Device,
    int Resize = 800, int MaxSize = 1333, int Workers = 0, ulong Seed = 0);

/// <summary>Post-training calibration: runs the model (fp32, no autocast) over the calibration batches while a
/// <see cref="ConvolutionInputObserver"/> collects every quantized convolution's input range.</summary>
public static class Calibration
{
    public static CalibrationTable Run(RetinaNetModel model, CalibrationData data, CalibrationSettings settings,
        TextWriter log)
    {
        log.WriteLine($"Calibrating ({settings.Method.ToString().ToLowerInvariant()}) on {Count(data)} images from "
            + $"{data.ImagesDir} in batches of {data.Batch}");
        var clock = Stopwatch.StartNew();
        using var observer = new ConvolutionInputObserver(model, settings.NewCollector,
            Int8Policy.FloatConvolutions(model));
        model.eval();
        using (no_grad())
            foreach (var host in Batches(data, log))
                using (host)
                {
                    using var scope = NewDisposeScope();
                    using var batch = DeviceBatch.From(host, data.Device);
                    using var heads = model.forward(batch.Images);
                }
        var table = observer.Table(settings.Method);
        log.WriteLine($"Calibrated {table.Scales.Count} convolution inputs in {clock.Elapsed.TotalSeconds:F1} s");
        return table;
    }

    /// <summary>How many images calibration reads.</summary>
    public static int Count(CalibrationData data) =>
        Math.Min(DetectionDataset.FromFolder(data.ImagesDir).Count, data.Batch * data.Batches);

    /// <summary>The calibration batches on the host (uint8 pixels at the fixed input size); each is the caller's to
    /// dispose.</summary>
    public static IEnumerable<HostBatch> Batches(CalibrationData data, TextWriter log)
    {
        var dataset = DetectionDataset.FromFolder(data.ImagesDir);
        int count = Math.Min(dataset.Count, data.Batch * data.Batches);
        var chosen = new ShardedSampler(dataset.Count, shuffle: true, seed: data.Seed).NextBatch(count);
        using var batches = chosen.Chunk(data.Batch).GetEnumerator();
        BatchPlan? Plan() => batches.MoveNext() ? new BatchPlan(batches.Current, new bool[batches.Current.Length], null)
            : null;
        var canvas = (data.Height, data.Width);
        var loaderOptions = new LoaderOptions(data.Workers, 2, 0, SkipBadImages: false,
            Pin: data.Device.type == TorchSharp.DeviceType.CUDA) { Canvas = canvas };
        var resize = Augmentation.ForInference(data.Resize, data.MaxSize, canvas);
        using var loader = DetectionLoader.Create(dataset, resize, Plan, loaderOptions, log);
        while (loader.Next() is HostBatch host) yield return host;
    }
}
