using System.Diagnostics;
using System.Globalization;
using RetinaNet.Boxes;
using RetinaNet.Inference;
using RetinaNet.Model;
using TorchSharp;
using static TorchSharp.torch;
using static RetinaNet.Native.Scalars;

// Benchmarks that need a GPU to mean anything; each prints one JSON line per figure.
//   RetinaNet.Bench nms [--boxes 20000] [--classes 80] [--detections 100] [--iters 50]
//   RetinaNet.Bench eval [--images 5000] [--categories 80] [--detections 100] [--iters 5] [--dir DIR]  (CPU only)
//   RetinaNet.Bench infer|train [--backbone ResNet50FPN] [--batch 8] [--height 800] [--width 1216]
//       [--precision bf16|fp16|fp32] [--iters 20]
//   RetinaNet.Bench loader --images DIR [--batch 16] [--count 1024] [--workers 1,16] [--pin false]
//       [--gpu-decode false] [--torch-threads N]
//   RetinaNet.Bench e2e --model M --images DIR [--batch 8] [--mode infer|loader|preloaded]   (EndToEndBench.cs)
//   RetinaNet.Bench nvjpeg-check --images DIR   (nvJPEG vs the CPU decoder, pixel differences and times)
//   RetinaNet.Bench nccl-check [--gpus N] [--mb 140]   (one rank per GPU: collectives checked, all-reduce timed;
//       see NcclCheck.cs)
//   RetinaNet.Bench COMMAND ...   any `retinanet` command (train, infer, evaluate, ...): one package carries both
//       to the GPU machine
//   RetinaNet.Bench decode --dir IMAGE_FOLDER [--rounds 3]   (CPU, single thread; see DecodeBench.cs)
//   RetinaNet.Bench rotated [--anchors 2000] [--boxes 50] [--nms-boxes 20000] [--detections 100]   (RotatedBench.cs)
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
RetinaNet.Native.CudaAllocatorDefaults.Apply(); // as `retinanet` does, before anything touches libtorch
var options = new Dictionary<string, string>();
for (int i = 1; i + 1 < args.Length; i += 2) options[args[i].TrimStart('-')] = args[i + 1];
string Opt(string name, string fallback) => options.GetValueOrDefault(name, fallback);
var device = cuda.is_available() ? CUDA : CPU;
void Sync() { if (device.type == DeviceType.CUDA) cuda.synchronize(); }

switch (args.FirstOrDefault())
{
    case "nms": Nms(); break;
    // the benchmark takes only options; with a model path first it is the retinanet command
    case "infer" or "train" when args.Length < 2 || args[1].StartsWith("--"):
        RetinaNet.Bench.InferenceBench.Run(args[0], Opt); break;
    case "loader": RetinaNet.Bench.LoaderBench.Run(Opt); break;
    case "e2e": RetinaNet.Bench.EndToEndBench.Run(Opt); break;
    case "nvjpeg-check": RetinaNet.Bench.LoaderBench.CheckNvJpeg(Opt); break;
    case "nccl-check": return RetinaNet.Bench.NcclCheck.Run(args, Opt);
    case "decode": RetinaNet.Bench.DecodeBench.Run(Opt("dir", "."), int.Parse(Opt("rounds", "3"))); break;
    case "eval": EvalBench.Run(Opt); break;
    case "rotated": RetinaNet.Bench.RotatedBench.Run(Opt); break;
    case "rotated-vs-axis": RetinaNet.Bench.RotatedVsAxisBench.Run(Opt); break;
    case "scalar-race": return RetinaNet.Bench.ScalarRaceCheck.Run(Opt);
    default:
        if (RetinaNet.Cli.CommandRegistry.Find(args.FirstOrDefault() ?? "") is not null)
            return RetinaNet.Cli.CommandLine.Run(args, Console.Out, Console.Error,
                RetinaNet.Cli.CliServices.ForThisProcess());
        Console.Error.WriteLine("usage: RetinaNet.Bench nms|infer|train|loader|decode|eval|rotated " +
            "[--option value ...], or a retinanet command");
        return 2;
}
return 0;

void Nms()
{
    int n = int.Parse(Opt("boxes", "20000")), classes = int.Parse(Opt("classes", "80")),
        iters = int.Parse(Opt("iters", "50"));
    foreach (int detections in new[] { int.Parse(Opt("detections", "100")), n })
    {
        using var scope = NewDisposeScope();
        var g = new Generator(0); // CPU generator, then moved: the same boxes on every device
        // Boxes clustered like a detector's candidates: many overlapping boxes around a few hundred objects.
        var centres = (rand(1, 300, 2, generator: g).to(device) * Of(1100)).repeat_interleave(n / 300 + 1, 1)[.., ..n];
        var jitter = randn(1, n, 2, generator: g).to(device) * Of(20);
        var size = (rand(1, n, 2, generator: g).to(device) * Of(150)).Plus(Of(10));
        var boxes = cat([centres.Plus(jitter), centres.Plus(jitter).Plus(size)], -1);
        var scores = rand(1, n, generator: g).to(device);
        var labels = randint(0, classes, [1, n], generator: g).to(device);
        for (int w = 0; w < 5; w++) BatchedNms.Run(scores, boxes, labels, null, 0.5, detections).Dispose();
        Sync();
        var times = new List<double>();
        long kept = 0;
        for (int i = 0; i < iters; i++)
        {
            var watch = Stopwatch.StartNew();
            using var r = BatchedNms.Run(scores, boxes, labels, null, 0.5, detections);
            Sync();
            times.Add(watch.Elapsed.TotalMilliseconds);
            kept = r.Count.cpu().item<long>();
        }
        times.Sort();
        // Same inputs on the CPU: the device result must be the identical kept list.
        using var onDevice = BatchedNms.Run(scores, boxes, labels, null, 0.5, detections);
        using var onCpu = BatchedNms.Run(scores.cpu(), boxes.cpu(), labels.cpu(), null, 0.5, detections);
        bool same = onDevice.Indices.cpu().equal(onCpu.Indices).all().item<bool>();
        Console.WriteLine($"{{\"bench\": \"nms\", \"device\": \"{DeviceName()}\", \"boxes\": {n}, " +
            $"\"classes\": {classes}, \"max_detections\": {detections}, \"kept\": {kept}, " +
            $"\"same_as_cpu\": {same.ToString().ToLowerInvariant()}, \"median_ms\": {times[times.Count / 2]:F3}, " +
            $"\"min_ms\": {times[0]:F3}}}");
    }
}

string DeviceName() => device.type == DeviceType.CUDA ? "cuda" : "cpu";
