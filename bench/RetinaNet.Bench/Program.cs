using System.Diagnostics;
using System.Globalization;
using RetinaNet.Boxes;
using RetinaNet.Inference;
using RetinaNet.Model;
using TorchSharp;
using static TorchSharp.torch;

// Benchmarks that need a GPU to mean anything; each prints one JSON line per figure.
//   RetinaNet.Bench nms [--boxes 20000] [--classes 80] [--detections 100] [--iters 50]
//   RetinaNet.Bench model [--backbone ResNet50FPN] [--batch 2] [--height 800] [--width 1216] [--iters 10]
//   RetinaNet.Bench decode --dir IMAGE_FOLDER [--rounds 3]   (CPU, single thread; see DecodeBench.cs)
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
var options = new Dictionary<string, string>();
for (int i = 1; i + 1 < args.Length; i += 2) options[args[i].TrimStart('-')] = args[i + 1];
string Opt(string name, string fallback) => options.GetValueOrDefault(name, fallback);
var device = cuda.is_available() ? CUDA : CPU;
void Sync() { if (device.type == DeviceType.CUDA) cuda.synchronize(); }

switch (args.FirstOrDefault())
{
    case "nms": Nms(); break;
    case "model": ModelStep(); break;
    case "decode": RetinaNet.Bench.DecodeBench.Run(Opt("dir", "."), int.Parse(Opt("rounds", "3"))); break;
    default: Console.Error.WriteLine("usage: RetinaNet.Bench nms|model|decode [--option value ...]"); return 2;
}
return 0;

void Nms()
{
    int n = int.Parse(Opt("boxes", "20000")), classes = int.Parse(Opt("classes", "80")), iters = int.Parse(Opt("iters", "50"));
    foreach (int detections in new[] { int.Parse(Opt("detections", "100")), n })
    {
        using var scope = NewDisposeScope();
        var g = new Generator(0); // CPU generator, then moved: the same boxes on every device
        // Boxes clustered like a detector's candidates: many overlapping boxes around a few hundred objects.
        var centres = (rand(1, 300, 2, generator: g).to(device) * 1100).repeat_interleave(n / 300 + 1, 1)[.., ..n];
        var jitter = randn(1, n, 2, generator: g).to(device) * 20;
        var size = rand(1, n, 2, generator: g).to(device) * 150 + 10;
        var boxes = cat([centres + jitter, centres + jitter + size], -1);
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
        Console.WriteLine($"{{\"bench\": \"nms\", \"device\": \"{DeviceName()}\", \"boxes\": {n}, \"classes\": {classes}, \"max_detections\": {detections}, \"kept\": {kept}, \"same_as_cpu\": {same.ToString().ToLowerInvariant()}, \"median_ms\": {times[times.Count / 2]:F3}, \"min_ms\": {times[0]:F3}}}");
    }
}

void ModelStep()
{
    string backbone = Opt("backbone", "ResNet50FPN");
    int batch = int.Parse(Opt("batch", "2")), h = int.Parse(Opt("height", "800")), w = int.Parse(Opt("width", "1216")), iters = int.Parse(Opt("iters", "10"));
    torch.manual_seed(0);
    var config = new DetectorConfig { Backbones = [backbone], Classes = 80 };
    using var model = new RetinaNetModel(config);
    model.Initialize();
    model.to(device).train();
    var loss = new DetectionLoss(config);
    using var generator = new AnchorGenerator(config.Anchors);
    var images = rand(batch, 3, h, w, device: device).DetachFromDisposeScope();
    var rows = new List<float>();
    for (int b = 0; b < batch; b++)
        for (int k = 0; k < 7; k++) rows.AddRange([50 + 100 * k, 40 + 90 * k, 80 + 10 * k, 60 + 5 * k, (b * 7 + k) % 80]);
    var targets = tensor(rows.ToArray(), [batch, 7, 5]).to(device).DetachFromDisposeScope();
    double trainMs = 0, lastLoss = 0;
    bool finite = true;
    for (int i = 0; i < iters + 2; i++)
    {
        using var scope = NewDisposeScope();
        var watch = Stopwatch.StartNew();
        var heads = model.forward(images);
        var anchors = generator.For(h, w, heads);
        var (cls, box) = loss.Compute(heads, anchors, targets);
        var total = cls + box;
        model.zero_grad();
        total.backward();
        Sync();
        if (i >= 2) trainMs += watch.Elapsed.TotalMilliseconds / iters;
        lastLoss = total.item<float>();
        finite &= model.parameters().All(p => p.grad is null || !p.grad.isnan().any().item<bool>());
    }
    Console.WriteLine($"{{\"bench\": \"forward_backward\", \"device\": \"{DeviceName()}\", \"backbone\": \"{backbone}\", \"batch\": {batch}, \"size\": [{h}, {w}], \"precision\": \"fp32\", \"loss\": {lastLoss:F4}, \"finite_grads\": {finite.ToString().ToLowerInvariant()}, \"ms_per_batch\": {trainMs:F1}, \"images_per_s\": {batch * 1000 / trainMs:F1}}}");

    model.eval();
    double inferMs = 0;
    long kept = 0;
    var inference = new InferenceConfig { ScoreThreshold = 0 };
    for (int i = 0; i < iters + 2; i++)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var watch = Stopwatch.StartNew();
        var heads = model.forward(images);
        var anchors = generator.For(h, w, heads);
        using var detections = Postprocess.Detect(heads, anchors, config.Classes, inference, (w, h));
        Sync();
        if (i >= 2) inferMs += watch.Elapsed.TotalMilliseconds / iters;
        kept = detections.Count.sum().cpu().item<long>();
    }
    Console.WriteLine($"{{\"bench\": \"inference\", \"device\": \"{DeviceName()}\", \"backbone\": \"{backbone}\", \"batch\": {batch}, \"size\": [{h}, {w}], \"precision\": \"fp32\", \"score_threshold\": 0, \"detections\": {kept}, \"ms_per_batch\": {inferMs:F1}, \"images_per_s\": {batch * 1000 / inferMs:F1}}}");
}

string DeviceName() => device.type == DeviceType.CUDA ? "cuda" : "cpu";
