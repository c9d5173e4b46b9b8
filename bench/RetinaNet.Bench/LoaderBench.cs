using System.Diagnostics;
using RetinaNet.Data;
using RetinaNet.Data.Loading;
using RetinaNet.Data.Transforms;

namespace RetinaNet.Bench;

/// <summary>Data pipeline throughput: decode + training augmentation (resize to 800 shorter side capped at 1333,
/// flip, colour factors) + batching into pinned-or-not uint8 batches, over the images of a folder, for several
/// worker counts. Prints images/s per worker count.</summary>
static class LoaderBench
{
    public static void Run(Func<string, string, string> opt)
    {
        string folder = opt("images", ".");
        int batch = int.Parse(opt("batch", "16")), images = int.Parse(opt("count", "1024"));
        var workerCounts = opt("workers", $"1,{Environment.ProcessorCount}").Split(',').Select(int.Parse);
        bool pin = opt("pin", "false") == "true", gpuDecode = opt("gpu-decode", "false") == "true";
        // libtorch's intra-op pool is process-wide: many loader threads each asking it for every core
        // oversubscribe them
        if (opt("torch-threads", "") is { Length: > 0 } threads) TorchSharp.torch.set_num_threads(int.Parse(threads));
        var dataset = DetectionDataset.FromFolder(folder);
        var chain = Augmentation.ForTraining(new AugmentationOptions(800, 800, 1333));
        foreach (int workers in workerCounts)
        {
            var sampler = new ShardedSampler(dataset.Count, seed: 1);
            using var loader = DetectionLoader.Create(dataset, chain, DetectionLoader.Training(sampler, batch),
                new LoaderOptions(workers, Math.Max(4, 2 * workers / batch + 2), 0, false, pin)
                    { DecodeDevice = gpuDecode ? TorchSharp.torch.CUDA : null }, Console.Error);
            using (loader.Next()) { } // warm-up: threads, first allocations
            var watch = Stopwatch.StartNew();
            int done = 0;
            long pixels = 0;
            while (done < images)
            {
                using var b = loader.Next()!;
                done += b.Count;
                pixels += b.Pixels.numel();
            }
            double s = watch.Elapsed.TotalSeconds;
            Console.WriteLine($"{{\"bench\": \"loader\", \"torch_threads\": {TorchSharp.torch.get_num_threads()}, " +
                $"\"folder\": \"{Path.GetFileName(Path.GetFullPath(folder))}\", " +
                $"\"cores\": {Environment.ProcessorCount}, \"workers\": {workers}, " +
                $"\"batch\": {batch}, \"pinned\": {pin.ToString().ToLowerInvariant()}, " +
                $"\"gpu_decode\": {gpuDecode.ToString().ToLowerInvariant()}, \"images\": {done}, " +
                $"\"seconds\": {s:F2}, \"images_per_s\": {done / s:F1}, " +
                $"\"mean_batch_mpixels\": {pixels / 3.0 / (done / (double)batch) / 1e6:F2}}}");
        }
    }

    /// <summary>nvJPEG against the CPU decoder on every image of a folder: largest and mean absolute pixel difference,
    /// files that fell back to the CPU, and single-thread decode time each way (GPU timed to a synchronised result).
    /// </summary>
    public static void CheckNvJpeg(Func<string, string, string> opt)
    {
        var files = ImageFolder.List(opt("images", "."));
        var cuda = TorchSharp.torch.CUDA;
        int fallback = 0; double worst = 0, meanSum = 0, cpuMs = 0, gpuMs = 0; string worstFile = "";
        foreach (var file in files)
        {
            var data = File.ReadAllBytes(file);
            var w1 = Stopwatch.StartNew();
            using var cpu = RetinaNet.Data.Imaging.ImageDecoder.Decode(data, file).ToTensor();
            cpuMs += w1.Elapsed.TotalMilliseconds;
            var w2 = Stopwatch.StartNew();
            using var gpu = RetinaNet.Native.NvJpeg.Decode(data, cuda);
            TorchSharp.torch.cuda.synchronize();
            gpuMs += w2.Elapsed.TotalMilliseconds;
            if (gpu is null) { fallback++; continue; }
            if (!gpu.shape.SequenceEqual(cpu.shape))
                throw new InvalidOperationException(
                    $"{file}: nvJPEG gave [{string.Join(",", gpu.shape)}], the CPU [{string.Join(",", cpu.shape)}]");
            using var diff =
                (gpu.cpu().to(TorchSharp.torch.ScalarType.Int32) - cpu.to(TorchSharp.torch.ScalarType.Int32)).abs();
            double max = diff.max().item<int>(),
                mean = diff.to(TorchSharp.torch.ScalarType.Float64).mean().item<double>();
            meanSum += mean;
            if (max > worst) (worst, worstFile) = (max, Path.GetFileName(file));
        }
        int compared = files.Count - fallback;
        Console.WriteLine($"{{\"bench\": \"nvjpeg_check\", \"images\": {files.Count}, \"compared\": {compared}, " +
            $"\"cpu_fallback\": {fallback}, \"max_abs_diff\": {worst}, \"worst_file\": \"{worstFile}\", " +
            $"\"mean_abs_diff\": {meanSum / Math.Max(1, compared):F3}, " +
            $"\"cpu_ms_per_image\": {cpuMs / files.Count:F2}, \"nvjpeg_ms_per_image\": {gpuMs / files.Count:F2}}}");
    }
}
