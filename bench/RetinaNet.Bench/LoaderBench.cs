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
        bool pin = opt("pin", "false") == "true";
        // libtorch's intra-op pool is process-wide: many loader threads each asking it for every core oversubscribe them
        if (opt("torch-threads", "") is { Length: > 0 } threads) TorchSharp.torch.set_num_threads(int.Parse(threads));
        var dataset = DetectionDataset.FromFolder(folder);
        var chain = Augmentation.ForTraining(new AugmentationOptions(800, 800, 1333));
        foreach (int workers in workerCounts)
        {
            var sampler = new ShardedSampler(dataset.Count, seed: 1);
            using var loader = DetectionLoader.Create(dataset, chain, DetectionLoader.Training(sampler, batch),
                new LoaderOptions(workers, Math.Max(4, 2 * workers / batch + 2), 0, false, pin), Console.Error);
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
            Console.WriteLine($"{{\"bench\": \"loader\", \"torch_threads\": {TorchSharp.torch.get_num_threads()}, \"folder\": \"{Path.GetFileName(Path.GetFullPath(folder))}\", \"cores\": {Environment.ProcessorCount}, \"workers\": {workers}, " +
                $"\"batch\": {batch}, \"pinned\": {pin.ToString().ToLowerInvariant()}, \"images\": {done}, \"seconds\": {s:F2}, \"images_per_s\": {done / s:F1}, \"mean_batch_mpixels\": {pixels / 3.0 / (done / (double)batch) / 1e6:F2}}}");
        }
    }
}
