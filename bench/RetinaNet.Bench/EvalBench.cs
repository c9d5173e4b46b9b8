using System.Diagnostics;
using RetinaNet.Data.Coco;
using RetinaNet.Evaluation;

/// <summary>COCO evaluation speed on a synthetic COCO-sized set: 5,000 images, 80 categories, ~7 objects and 100
/// detections per image (seeded). Writes the set as JSON (gt.json, detections.json) so that pycocotools can be timed
/// on the same files (bench/cocoeval_peer.py), then times loading and CocoEvaluator.Evaluate.</summary>
static class EvalBench
{
    public static void Run(Func<string, string, string> opt)
    {
        int images = int.Parse(opt("images", "5000")), categories = int.Parse(opt("categories", "80"));
        int perImage = int.Parse(opt("detections", "100")), iters = int.Parse(opt("iters", "5"));
        string dir = opt("dir", Path.Combine(Path.GetTempPath(), "retinanet-evalbench"));
        Directory.CreateDirectory(dir);
        var (gt, detections) = Generate(images, categories, perImage, seed: 0);
        string gtPath = Path.Combine(dir, "gt.json"), dtPath = Path.Combine(dir, "detections.json");
        gt.Save(gtPath);
        DetectionsFile.WriteCocoResults(dtPath, detections);

        var load = Stopwatch.StartNew();
        var loadedGt = CocoFile.Load(gtPath);
        var loadedDt = DetectionsFile.Read(dtPath);
        DetectionsFile.Validate(loadedDt, loadedGt, dtPath);
        double loadS = load.Elapsed.TotalSeconds;

        CocoEvaluator.Evaluate(loadedGt, loadedDt); // warm-up (JIT)
        var times = new List<double>();
        var cpu = new List<double>();
        CocoEvalResult? result = null;
        for (int i = 0; i < iters; i++)
        {
            var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            var watch = Stopwatch.StartNew();
            result = CocoEvaluator.Evaluate(loadedGt, loadedDt);
            times.Add(watch.Elapsed.TotalSeconds);
            cpu.Add((Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds);
        }
        times.Sort();
        cpu.Sort();
        Console.Write(result!.SummaryText());
        Console.WriteLine($"{{\"bench\": \"cocoeval\", \"cores\": {Environment.ProcessorCount}, " +
            $"\"images\": {images}, \"categories\": {categories}, " +
            $"\"gts\": {loadedGt.Annotations.Count}, \"detections\": {loadedDt.Count}, \"load_s\": {loadS:F3}, " +
            $"\"evaluate_median_s\": {times[times.Count / 2]:F3}, \"evaluate_min_s\": {times[0]:F3}, " +
            $"\"evaluate_cpu_median_s\": {cpu[cpu.Count / 2]:F3}, \"load_average\": \"{LoadAverage()}\", " +
            $"\"files\": \"{dir}\"}}");
    }

    // Wall times on a shared 2-core box depend on what else runs: the load average goes with them.
    static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ')[..3]) : "n/a";

    /// <summary>Objects of random size (log-uniform 8..400 px, so all three area ranges), 10% crowds; detections:
    /// jittered copies of objects (some of the wrong category) and random boxes, random scores.</summary>
    static (CocoFile Gt, List<CocoDetection> Detections) Generate(int images, int categories, int perImage, int seed)
    {
        var rng = new Random(seed);
        var imageInfos = new List<CocoImageInfo>();
        var annotations = new List<CocoAnnotation>();
        var detections = new List<CocoDetection>(images * perImage);
        var cats = Enumerable.Range(1, categories).Select(c => new CocoCategory(c, $"class{c}")).ToList();
        for (int i = 0; i < images; i++)
        {
            long imageId = 100000 + 7L * i;
            imageInfos.Add(new CocoImageInfo(imageId, $"{imageId:D12}.jpg", 640, 480));
            int objects = rng.Next(1, 14); // ~7 on average
            int first = annotations.Count;
            for (int o = 0; o < objects; o++)
            {
                double w = Math.Round(Math.Exp(rng.NextDouble() * Math.Log(50) + Math.Log(8)), 2),
                    h = Math.Round(w * (0.5 + rng.NextDouble()), 2);
                double x = Math.Round(rng.NextDouble() * (640 - Math.Min(w, 600)), 2),
                    y = Math.Round(rng.NextDouble() * (480 - Math.Min(h, 460)), 2);
                annotations.Add(new CocoAnnotation(annotations.Count + 1, imageId, rng.Next(1, categories + 1),
                    x, y, w, h, Math.Round(w * h * 0.8, 2), rng.NextDouble() < 0.1));
            }
            for (int d = 0; d < perImage; d++)
            {
                float score = (float)Math.Round(rng.NextDouble(), 4);
                if (rng.NextDouble() < 0.5)
                {
                    var a = annotations[first + rng.Next(objects)];
                    double j = 0.15 * rng.NextDouble();
                    long category = rng.NextDouble() < 0.8 ? a.CategoryId : rng.Next(1, categories + 1);
                    detections.Add(new CocoDetection(imageId, category,
                        (float)(a.X + a.W * j * (rng.NextDouble() - 0.5)),
                        (float)(a.Y + a.H * j * (rng.NextDouble() - 0.5)),
                        (float)(a.W * (1 + j * (rng.NextDouble() - 0.5))),
                        (float)(a.H * (1 + j * (rng.NextDouble() - 0.5))), score));
                }
                else
                {
                    float w = (float)(8 + rng.NextDouble() * 300), h = (float)(8 + rng.NextDouble() * 300);
                    detections.Add(new CocoDetection(imageId, rng.Next(1, categories + 1),
                        (float)(rng.NextDouble() * (640 - w)), (float)(rng.NextDouble() * (480 - h)), w, h, score));
                }
            }
        }
        return (new CocoFile("synthetic", imageInfos, annotations, cats), detections);
    }
}
