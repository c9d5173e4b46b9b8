using System.Diagnostics;
using RetinaNet.Data;
using RetinaNet.Data.Loading;
using RetinaNet.Inference;
using static TorchSharp.torch;

namespace RetinaNet.Bench;

/// <summary><c>retinanet infer</c>'s loop over a folder, its time split into waiting for the loader, the detector's
/// call (copy to the device, forward, decode, NMS, the one transfer back) and mapping to COCO results.
///   RetinaNet.Bench e2e --model M --images DIR [--batch 8] [--workers 0] [--prefetch 3] [--gpu-decode false]
///       [--graphs false] [--mode infer|loader|preloaded|job|first|eval]
///       [--new-shape-pixels N (default: the product's)]
///       [--in-flight 1] [the kernel levers of Levers]
/// loader: the loader alone; preloaded: 16 batches spread over the pass kept in memory and run 3 times (the model on
/// the folder's real shapes and thresholds, no loading); job: infer's own loop (InferenceJob.Detect), --in-flight
/// batches ahead; first: where the pass's first batch goes; eval: infer's job with --annotations A evaluated
/// (--resize, --max-size as infer's).</summary>
static class EndToEndBench
{
    public static void Run(Func<string, string, string> opt)
    {
        var whole = Stopwatch.StartNew();
        var device = cuda.is_available() ? CUDA : CPU;
        int batch = int.Parse(opt("batch", "8")), workers = int.Parse(opt("workers", "0")),
            prefetch = int.Parse(opt("prefetch", "3"));
        bool gpuDecode = opt("gpu-decode", "false") == "true", graphs = opt("graphs", "false") == "true";
        string mode = opt("mode", "infer");
        var run = new ExecutionOptions(device, opt("precision", "bf16") == "fp32", graphs, batch)
        {
            Kernels = Levers.Apply(Native.KernelOptions.Default, opt),
        };
        using var detector = ModelFiles.Open(opt("model", ""), run, s => s, Console.Error);
        var dataset = ImageInputs.Resolve(opt("images", "."));
        int resize = int.Parse(opt("resize", $"{detector.Settings.Resize}")),
            maxSize = int.Parse(opt("max-size", $"{detector.Settings.MaxSize}"));
        var o = new InferenceOptions(device, batch, resize, maxSize,
            run.MixedPrecision, workers, prefetch, GpuDecode: gpuDecode, CudaGraphs: graphs)
        {
            NewShapePixels = opt("new-shape-pixels", "") is { Length: > 0 } p ? long.Parse(p) : null,
            BatchesInFlight = int.Parse(opt("in-flight", "1")),
        };
        double open = whole.Elapsed.TotalSeconds;
        // which levers ran, on every line this bench prints
        string levers = Levers.Json(run.Kernels) + $", \"graphs\": {graphs.ToString().ToLowerInvariant()}";
        if (mode == "job") { Job(detector, dataset, o, whole, levers); return; }
        if (mode == "eval")
        {
            // infer's whole job with COCO evaluation, so a lever's accuracy is compared on a trained model
            Console.WriteLine($"levers: {levers.TrimStart(',', ' ')}");
            InferenceJob.Run(detector, new InferenceJobOptions(opt("model", ""), opt("images", "."),
                opt("annotations", ""), [], "odtk", o), Console.Out, Console.Error);
            return;
        }
        using var loader = InferenceJob.OnePassLoader(detector, dataset, o, Console.Error);
        if (mode == "first") { FirstBatch(detector, loader, device, whole, levers); return; }
        var clock = Stopwatch.StartNew();
        double wait = 0, detect = 0, map = 0, first = 0;
        int images = 0, batches = 0, padded = 0;
        long pixels = 0, detections = 0;
        var kept = new List<HostBatch>();
        var byShape = new Dictionary<string, List<double>>(); // the detector's call per batch, by padded shape
        int every = Math.Max(1, (dataset.Count + batch - 1) / batch / 16);
        var results = new List<Data.Coco.CocoDetection>();
        while (true)
        {
            var t0 = clock.Elapsed.TotalMilliseconds;
            var host = loader.Next();
            var t1 = clock.Elapsed.TotalMilliseconds;
            wait += t1 - t0;
            if (host is null) break;
            pixels += host.Pixels.numel() / 3;
            images += host.Padding.Count(p => !p); // entries that only fill a batch are not images
            batches++;
            if (mode == "preloaded")
            {
                // 16 batches spread over the pass: its batches come ordered by shape, smallest first
                if (kept.Count < 16 && (batches - 1) % every == 0) kept.Add(host); else host.Dispose();
                continue;
            }
            using (host)
            {
                var shape = $"{host.Count}x{host.Pixels.shape[2]}x{host.Pixels.shape[3]}";
                if (!byShape.TryGetValue(shape, out var times)) byShape[shape] = times = [];
                padded += host.Padding.Count(p => p);
                if (mode == "loader") { times.Add(0); continue; }
                var found = detector.Detect(host);
                var t2 = clock.Elapsed.TotalMilliseconds;
                detect += t2 - t1;
                times.Add(t2 - t1);
                foreach (var image in found)
                    for (int j = 0; j < image.Count; j++) results.Add(CocoDetections.Of(image, j, image.Classes[j]));
                detections += found.Sum(f => f.Count);
                map += clock.Elapsed.TotalMilliseconds - t2;
                if (batches == 1) first = clock.Elapsed.TotalMilliseconds;
            }
        }
        double seconds = clock.Elapsed.TotalSeconds;
        string extra = "";
        if (mode == "preloaded")
        {
            foreach (var h in kept) detector.Detect(h); // shapes seen once
            var timed = Stopwatch.StartNew();
            int n = 0;
            for (int round = 0; round < 3; round++)
                foreach (var h in kept) { detections += detector.Detect(h).Sum(f => f.Count); n += h.Padding.Count(p => !p); }
            extra = $", \"preloaded_images_per_s\": {n / timed.Elapsed.TotalSeconds:F1}";
            foreach (var h in kept) h.Dispose();
        }
        // per shape: batches, the first call, the mean of the others (is a new shape's first batch what costs?)
        foreach (var (shape, times) in byShape)
            Console.WriteLine($"{{\"bench\": \"e2e-shape\", \"batch\": {batch}, \"shape\": \"{shape}\", "
                + $"\"batches\": {times.Count}, \"first_ms\": {times[0]:F1}, "
                + $"\"rest_mean_ms\": {(times.Count > 1 ? times.Skip(1).Average() : 0):F1}}}");
        Console.WriteLine($"{{\"bench\": \"e2e\", \"mode\": \"{mode}\", \"cores\": "
            + $"{Environment.ProcessorCount}, \"batch\": {batch}, \"workers\": {workers}, \"prefetch\": {prefetch}, "
            + $"\"gpu_decode\": {gpuDecode.ToString().ToLowerInvariant()}, \"images\": {images}, "
            + $"\"loop_s\": {seconds:F2}, \"images_per_s\": {images / seconds:F1}, "
            + $"\"after_first_batch_images_per_s\": {(images - batch) / (seconds - first / 1000):F1}, "
            + $"\"open_s\": {open:F2}, \"first_batch_ms\": {first:F1}, "
            + $"\"wait_ms_per_batch\": {wait / batches:F2}, \"detect_ms_per_batch\": {detect / batches:F2}, "
            + $"\"map_ms_per_batch\": {map / batches:F2}, \"mean_batch_mpixels\": {pixels / (double)batches / 1e6:F2}, "
            + $"\"detections\": {detections}, \"shapes\": {byShape.Count}, \"padding_entries\": {padded}, "
            + $"\"whole_s\": {whole.Elapsed.TotalSeconds:F2}{extra}{levers}}}");
    }

    /// <summary>infer's own loop (InferenceJob.Detect) with o.BatchesInFlight batches submitted ahead: the whole pass
    /// timed, the first batch's results by the progress callback.</summary>
    static void Job(IDetector detector, DetectionDataset dataset, InferenceOptions o, Stopwatch whole, string levers)
    {
        var job = Stopwatch.StartNew();
        double firstBatch = 0;
        var found = InferenceJob.Detect(detector, dataset, o, Console.Error, (done, _, _) =>
        {
            if (done == 1) firstBatch = job.Elapsed.TotalMilliseconds;
        });
        double loop = job.Elapsed.TotalSeconds;
        Console.WriteLine($"{{\"bench\": \"e2e\", \"mode\": \"job\", \"batch\": {o.Batch}, "
            + $"\"in_flight\": {o.BatchesInFlight}, \"workers\": {o.Workers}, \"images\": {dataset.Count}, "
            + $"\"loop_s\": {loop:F2}, \"images_per_s\": {dataset.Count / loop:F1}, "
            + $"\"first_batch_ms\": {firstBatch:F1}, \"detections\": {found.Count}, "
            + $"\"whole_s\": {whole.Elapsed.TotalSeconds:F2}{levers}}}");
    }

    /// <summary>Where a pass's first batch goes (item 1: ≈ 1 s of a 4 s loop), each step synchronised: cuDNN's first
    /// convolution (its libraries and handle), the detector on one small image (every kernel's first use, the
    /// algorithm choice for a small shape), the same again (what stays per call), then the pass's first real batch
    /// and the same batch again.</summary>
    static void FirstBatch(IDetector detector, PrefetchingLoader loader, Device device, Stopwatch whole,
        string levers)
    {
        double opened = whole.Elapsed.TotalMilliseconds;
        var clock = Stopwatch.StartNew();
        double Step(Action step)
        {
            var start = clock.Elapsed.TotalMilliseconds;
            step();
            if (device.type == TorchSharp.DeviceType.CUDA) cuda.synchronize(device);
            return clock.Elapsed.TotalMilliseconds - start;
        }
        double cudnn = Step(() =>
        {
            using var scope = NewDisposeScope();
            nn.functional.conv2d(ones(1, 8, 8, 8, device: device), ones(8, 8, 3, 3, device: device), padding: [1, 1]);
        });
        using var small = HostBatch.Collate([new PreparedImage(0, 0, new Data.Transforms.ImageWithBoxes(
            zeros(3, 128, 128, ScalarType.Byte), [], []), 128, 128)], [false], 128,
            pin: device.type == TorchSharp.DeviceType.CUDA);
        double smallFirst = Step(() => detector.Detect(small)), smallAgain = Step(() => detector.Detect(small));
        HostBatch? host = null;
        double wait = Step(() => host = loader.Next());
        using (host)
        {
            double first = host is null ? 0 : Step(() => detector.Detect(host));
            double again = host is null ? 0 : Step(() => detector.Detect(host));
            var shape = host is null ? "" : $"{host.Count}x{host.Pixels.shape[2]}x{host.Pixels.shape[3]}";
            Console.WriteLine($"{{\"bench\": \"e2e-first\", \"open_ms\": {opened:F1}, "
                + $"\"cudnn_first_conv_ms\": {cudnn:F1}, \"small_first_ms\": {smallFirst:F1}, "
                + $"\"small_again_ms\": {smallAgain:F1}, \"loader_first_ms\": {wait:F1}, "
                + $"\"batch_shape\": \"{shape}\", \"batch_first_ms\": {first:F1}, \"batch_again_ms\": {again:F1}"
                + $"{levers}}}");
        }
    }
}
