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
///   train: one full training step (DeviceBatch, forward, loss, backward, flat SGD step) as the Trainer runs it.
///   </summary>
static class InferenceBench
{
    public static void Run(string mode, Func<string, string, string> opt)
    {
        var device = cuda.is_available() ? CUDA : CPU;
        string backbone = opt("backbone", "ResNet50FPN"), precision = opt("precision", "bf16"), extra0;
        int batch = int.Parse(opt("batch", "8")), h = int.Parse(opt("height", "800")),
            w = int.Parse(opt("width", "1216")), iters = int.Parse(opt("iters", "20"));
        ScalarType? dtype = precision switch { "fp32" => null, "fp16" => ScalarType.Float16, _ => ScalarType.BFloat16 };
        torch.manual_seed(0);
        // --rotated true: ODTK's --rotated-bbox (27 anchors a location, 6 box values, rotated matching and NMS)
        bool rotated = opt("rotated", "false") == "true";
        var config = new DetectorConfig
        {
            Backbones = [backbone], Classes = 80, Inference = new InferenceConfig { ScoreThreshold = 0 },
            Anchors = new AnchorConfig { Angles = rotated ? AnchorConfig.DefaultAngles : [] },
        };
        // --kernels false: libtorch's top-k and the tensor-op NMS / focal loss instead of our CUDA kernels
        bool kernels = opt("kernels", "true") == "true" && CudaKernels.Available;
        bool chunkedTopK = opt("chunked-topk", "true") != "false";
        var kernelOptions = Levers.Apply((kernels ? KernelOptions.Default : KernelOptions.None) with
        {
            ChunkedTopKLength = chunkedTopK ? KernelOptions.Default.ChunkedTopKLength : long.MaxValue,
            SuppressInGraph = opt("nms-in-graph", "false") == "true",
        }, opt);
        using var model = new RetinaNetModel(config, kernelOptions);
        model.Initialize(seed: 0);
        model.to(device);
        // --convert: weights themselves in the low precision (what `infer` does); --nhwc: channels-last strides
        bool convert = opt("convert", "false") == "true", nhwc = opt("nhwc", "false") == "true",
            graphs = opt("graphs", "false") == "true";
        if (opt("cudnn-benchmark", "false") == "true") CudnnSettings.Benchmark = true;
        extra0 = $", \"kernels\": {kernels.ToString().ToLowerInvariant()}" + Levers.Json(kernelOptions)
            + (CudaKernels.Available || device.type != DeviceType.CUDA
                ? "" : $", \"kernels_missing\": \"{CudaKernels.MissingReason}\"");
        // the fused weights in the run's precision and layout, as infer stores them (under autocast too)
        if (mode == "infer" && opt("cache-affine", "true") == "true") model.PrepareForInference(dtype, nhwc);
        if (convert && dtype is ScalarType low) model.to(low);
        if (nhwc && mode == "infer") Layouts.ToChannelsLast(model);
        using var host = RandomBatch(batch, h, w, device.type == DeviceType.CUDA, rotated);
        // --onednn false: CPU convolutions through libtorch's own kernels (what training uses, see CpuNumerics)
        using var noOneDnn = opt("onednn", "true") == "false" ? CpuNumerics.ExactGradients() : null;
        double ms; string extra = extra0;
        if (mode == "infer")
        {
            using var runner = new DetectionRunner(model, device, dtype, graphs);
            long kept = 0;
            ms = Time(iters, () => kept = runner.Detect(host).Sum(d => d.Count), device);
            if (graphs)
            {
                // a replayed graph must give the eager path's detections
                using var eager = new DetectionRunner(model, device, dtype);
                var a = runner.Detect(host); var b = eager.Detect(host);
                double scoreDiff = a.Zip(b).Max(p => p.First.Scores.Zip(p.Second.Scores)
                    .Select(q => Math.Abs(q.First - q.Second)).DefaultIfEmpty(0).Max());
                double boxDiff = a.Zip(b).Max(p => p.First.Boxes.Zip(p.Second.Boxes)
                    .Select(q => Math.Abs(q.First - q.Second)).DefaultIfEmpty(0).Max());
                bool sameCounts = a.Zip(b).All(p => p.First.Count == p.Second.Count
                    && p.First.Classes.SequenceEqual(p.Second.Classes));
                extra += $", \"graph_vs_eager\": {{" +
                    $"\"same_counts_and_classes\": {sameCounts.ToString().ToLowerInvariant()}, " +
                    $"\"max_score_diff\": {scoreDiff:E2}, \"max_box_diff\": {boxDiff:E2}}}";
            }
            double forward = 0, features = 0, decode = 0, topK = 0, nms = 0; var stats = new NmsStats();
            // --parts false: end to end only (a clean peak-memory figure: the parts below keep their own tensors alive)
            if (opt("parts", "true") == "true" && !rotated) // the parts compare against the axis-aligned NMS
            {
                // the forward alone, as the runner feeds it (decode + NMS + copy back = the rest)
                using var images = DeviceBatch.From(host, device);
                var input = (convert && dtype is ScalarType d ? images.Images.to(d) : images.Images);
                if (nhwc) input = Layouts.NhwcCopy(input);
                using (no_grad())
                using (!convert && dtype is ScalarType a ? Autocast.Enable(device.type, a) : null)
                    forward = Time(iters, () => model.forward(input).Dispose(), device);
                using (no_grad())
                using (!convert && dtype is ScalarType a ? Autocast.Enable(device.type, a) : null)
                    features = Time(iters, () => { foreach (var f in model.Features(input)) f.Dispose(); }, device);
                // decode and NMS alone, on this batch's heads
                var anchors = new AnchorGenerator(config.Anchors);
                var inference = model.Config.Inference;
                using (no_grad())
                using (!convert && dtype is ScalarType a ? Autocast.Enable(device.type, a) : null)
                {
                    using var heads = model.forward(input);
                    var levels = anchors.For(input.shape[2], input.shape[3], heads);
                    (long W, long H) size = (input.shape[3], input.shape[2]);
                    Candidates Decode() =>
                        Postprocess.Decode(heads, levels, config.Classes, inference, size, model.Kernels);
                    decode = Time(iters, () => Decode().Dispose(), device);
                    // decode's per-level top-k alone (with the flattening of each level's logits it starts with)
                    topK = Time(iters, () =>
                    {
                        using var levelScope = NewDisposeScope();
                        foreach (var c in heads.ClassLogits)
                            Postprocess.TopK(c.reshape(c.shape[0], -1),
                                (int)Math.Min(inference.TopN, c.numel() / c.shape[0]), model.Kernels);
                    }, device);
                    using var candidates = Decode();
                    nms = Time(iters, () => Postprocess.Suppress(candidates, inference, model.Kernels).Dispose(),
                        device);
                    using var reference = BatchedNms.Run(candidates.Scores, candidates.Boxes, candidates.Classes,
                        candidates.Valid, inference.NmsThreshold, inference.Detections, stats: stats);
                    if (kernels)
                    {
                        // our kernels against libtorch's top-k and the tensor-op NMS on this batch's real heads
                        using var byKernel = NmsKernel.Run(candidates.Scores, candidates.Boxes, candidates.Classes,
                            candidates.Valid, inference.NmsThreshold, inference.Detections);
                        bool sameNms = byKernel.Indices.equal(reference.Indices).all().item<bool>()
                            && byKernel.Count.equal(reference.Count).all().item<bool>();
                        var logits = heads.ClassLogits[0].reshape(batch, -1);
                        var (ours, _) = TopKKernel.Run(logits, 1000);
                        var (theirs, _) = logits.topk(1000, dim: 1);
                        bool sameTopK = ours.equal(theirs.to(ScalarType.Float32)).all().item<bool>();
                        extra += $", \"kernels_check\": {{" +
                            $"\"nms_same_indices\": {sameNms.ToString().ToLowerInvariant()}, " +
                            $"\"topk_same_values\": {sameTopK.ToString().ToLowerInvariant()}}}";
                    }
                }
            }
            extra += $", \"detections\": {kept}, \"graphs\": {graphs.ToString().ToLowerInvariant()}, " +
                $"\"forward_ms\": {forward:F2}, \"backbone_fpn_ms\": {features:F2}, \"decode_ms\": {decode:F2}, " +
                $"\"topk_ms\": {topK:F2}, \"nms_ms\": {nms:F2}, \"nms_blocks\": {stats.Blocks}, " +
                $"\"nms_iterations\": {stats.Iterations}";
        }
        else
        {
            // as `retinanet train` runs: stem frozen (conv1, layer1), no host wait between steps (throughput)
            bool freezeStem = opt("freeze-stem", "true") == "true";
            if (freezeStem) model.FreezeStems();
            var settings = new TrainingSettings { Iterations = iters + 3, Batch = batch, MixedPrecision = dtype,
                Schedule = new LearningRateSchedule(0.001, 0, []), ChannelsLast = nhwc };
            using var trainer = new Trainer(model, device, settings);
            for (int i = 0; i < 3; i++) trainer.Step(host, 1);
            if (device.type == DeviceType.CUDA) cuda.synchronize();
            var watch = Stopwatch.StartNew();
            for (int i = 0; i < iters; i++) trainer.Step(host, 1);
            if (device.type == DeviceType.CUDA) cuda.synchronize();
            ms = watch.Elapsed.TotalMilliseconds / iters;
            extra += $", \"frozen_stem\": {freezeStem.ToString().ToLowerInvariant()}";
            var clock = new StageClock(device);
            for (int i = 0; i < 5; i++) trainer.Step(host, 1, clock);
            extra += ", \"stages_ms\": {"
                + string.Join(", ", clock.Milliseconds.Select(kv => $"\"{kv.Key}\": {kv.Value / 5:F2}")) + "}";
            if (device.type == DeviceType.CUDA && CudaKernels.Available)
            {
                var (hostMs, gpuMs) = DeviceBoundStep(() => trainer.Step(host, 1));
                extra += $", \"step_host_ms\": {hostMs:F2}, \"step_gpu_ms\": {gpuMs:F2}";
            }
        }
        Console.WriteLine($"{{\"bench\": \"{mode}\", \"rotated\": {rotated.ToString().ToLowerInvariant()}, " +
            $"\"device\": \"{(device.type == DeviceType.CUDA ? "cuda" : "cpu")}\", \"backbone\": \"{backbone}\", " +
            $"\"batch\": {batch}, \"size\": [{h}, {w}], \"precision\": \"{precision}\", " +
            $"\"converted_weights\": {convert.ToString().ToLowerInvariant()}, " +
            $"\"nhwc\": {nhwc.ToString().ToLowerInvariant()}{extra}, \"ms_per_batch\": {ms:F2}, " +
            $"\"images_per_s\": {batch * 1000 / ms:F1}}}");
    }

    const string Spin = """
        extern "C" __global__ void spin(unsigned long long nanoseconds)
        {
            unsigned long long start, now;
            asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
            do asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now)); while (now - start < nanoseconds);
        }
        """;

    /// <summary>A step's device time with the host far ahead: a 300 ms spin kernel holds the stream while the host
    /// enqueues the step, so the step's kernels then run back to back (its time is the total less the spin). Against
    /// the step's wall time this says how much of it the host's launch work costs. Returns (host enqueue ms, device
    /// ms), medians of 5. A host figure over 300 ms means the host waited inside the step: on a copy from pageable
    /// memory or another sync, or on CUDA's launch queue, which holds about a thousand launches (a training step makes
    /// more); the device figure then includes whatever the host's late launches cost.</summary>
    static (double Host, double Device) DeviceBoundStep(Action step)
    {
        const double spinMs = 300;
        var hosts = new List<double>(); var devices = new List<double>();
        var spin = CudaKernels.Get(Spin, "spin", 0); // compiled here, not inside the timing
        for (int i = 0; i < 5; i++)
        {
            cuda.synchronize();
            var watch = Stopwatch.StartNew();
            spin.Launch(1, 1, 0, (long)(spinMs * 1e6));
            var launched = watch.Elapsed.TotalMilliseconds;
            step();
            hosts.Add(watch.Elapsed.TotalMilliseconds - launched);
            cuda.synchronize();
            devices.Add(watch.Elapsed.TotalMilliseconds - spinMs);
        }
        hosts.Sort(); devices.Sort();
        return (hosts[2], devices[2]);
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

    static HostBatch RandomBatch(int batch, int h, int w, bool pin, bool rotated = false)
    {
        var images = new List<PreparedImage>();
        var g = new Generator(0);
        for (int i = 0; i < batch; i++)
        {
            var pixels = randint(0, 256, [3, h, w], generator: g).to(ScalarType.Byte);
            var boxes = new List<float>(); var classes = new List<int>();
            for (int k = 0; k < 7; k++)
            {
                boxes.AddRange([50 + 100 * k, 40 + 90 * k, 130 + 110 * k, 100 + 95 * k]); classes.Add((i * 7 + k) % 80);
            }
            float[]? angles = rotated ? classes.Select(c => (c % 5 - 2) * 0.3f).ToArray() : null;
            images.Add(new PreparedImage(i, i, new ImageWithBoxes(pixels, [.. boxes], [.. classes], angles), w, h));
        }
        var host = HostBatch.Collate(images, new bool[batch], Fpn.Stride, pin, rotated: rotated);
        foreach (var image in images) image.Dispose();
        return host;
    }
}
