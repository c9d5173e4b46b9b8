using System.Diagnostics;
using RetinaNet.Boxes;
using RetinaNet.Data.Loading;
using RetinaNet.Data.Transforms;
using RetinaNet.Inference;
using RetinaNet.Model;
using RetinaNet.Native;
using RetinaNet.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Bench;

/// <summary>Model throughput on random images, end to end as the product runs it.
///   infer: uint8 batch on the host → device → normalise → forward → decode → NMS → detections on the host
///          (DetectionRunner.Detect, the path of `retinanet infer`), score threshold 0 (post-processing's worst case).
///   train: one full training step (DeviceBatch, forward, loss, backward, flat SGD step) as the Trainer runs it.</summary>
static class InferenceBench
{
    public static void Run(string mode, Func<string, string, string> opt)
    {
        var device = cuda.is_available() ? CUDA : CPU;
        string backbone = opt("backbone", "ResNet50FPN"), precision = opt("precision", "bf16");
        int batch = int.Parse(opt("batch", "8")), h = int.Parse(opt("height", "800")), w = int.Parse(opt("width", "1216")), iters = int.Parse(opt("iters", "20"));
        ScalarType? dtype = precision switch { "fp32" => null, "fp16" => ScalarType.Float16, _ => ScalarType.BFloat16 };
        torch.manual_seed(0);
        var config = new DetectorConfig { Backbones = [backbone], Classes = 80, Inference = new InferenceConfig { ScoreThreshold = 0 } };
        using var model = new RetinaNetModel(config);
        model.Initialize();
        model.to(device);
        // --convert: weights themselves in the low precision (what `infer` does); --nhwc: channels-last strides
        bool convert = opt("convert", "false") == "true", nhwc = opt("nhwc", "false") == "true";
        if (convert && dtype is ScalarType low) model.to(low);
        if (nhwc) Layouts.ToChannelsLast(model);
        using var host = RandomBatch(batch, h, w, device.type == DeviceType.CUDA);
        double ms; string extra = "";
        if (mode == "infer")
        {
            using var runner = new DetectionRunner(model, device, dtype);
            long kept = 0;
            ms = Time(iters, () => kept = runner.Detect(host).Sum(d => d.Count), device);
            extra = $", \"detections\": {kept}";
        }
        else
        {
            var settings = new TrainingSettings { Iterations = iters + 3, Batch = batch, MixedPrecision = dtype, Schedule = new LearningRateSchedule(0.001, 0, []) };
            using var trainer = new Trainer(model, device, settings);
            ms = Time(iters, () => trainer.StepForBenchmark(host), device);
        }
        Console.WriteLine($"{{\"bench\": \"{mode}\", \"device\": \"{(device.type == DeviceType.CUDA ? "cuda" : "cpu")}\", \"backbone\": \"{backbone}\", \"batch\": {batch}, " +
            $"\"size\": [{h}, {w}], \"precision\": \"{precision}\", \"converted_weights\": {convert.ToString().ToLowerInvariant()}, \"nhwc\": {nhwc.ToString().ToLowerInvariant()}{extra}, \"ms_per_batch\": {ms:F2}, \"images_per_s\": {batch * 1000 / ms:F1}}}");
    }

    static double Time(int iters, Action step, Device device)
    {
        for (int i = 0; i < 3; i++) step();
        if (device.type == DeviceType.CUDA) cuda.synchronize();
        var times = new List<double>();
        for (int i = 0; i < iters; i++)
        {
            var watch = Stopwatch.StartNew();
            step();
            if (device.type == DeviceType.CUDA) cuda.synchronize();
            times.Add(watch.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        return times[times.Count / 2];
    }

    static HostBatch RandomBatch(int batch, int h, int w, bool pin)
    {
        var images = new List<PreparedImage>();
        var g = new Generator(0);
        for (int i = 0; i < batch; i++)
        {
            var pixels = randint(0, 256, [3, h, w], generator: g).to(ScalarType.Byte);
            var boxes = new List<float>(); var classes = new List<int>();
            for (int k = 0; k < 7; k++) { boxes.AddRange([50 + 100 * k, 40 + 90 * k, 130 + 110 * k, 100 + 95 * k]); classes.Add((i * 7 + k) % 80); }
            images.Add(new PreparedImage(i, i, new ImageWithBoxes(pixels, [.. boxes], [.. classes]), w, h));
        }
        var host = HostBatch.Collate(images, new bool[batch], Fpn.Stride, pin);
        foreach (var image in images) image.Dispose();
        return host;
    }
}
