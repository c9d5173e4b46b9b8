using System.Diagnostics;
using RetinaNet.Boxes;
using TorchSharp;
using static TorchSharp.torch;
using static RetinaNet.Native.Scalars;

namespace RetinaNet.Bench;

/// <summary>Rotated IoU of anchors x boxes and exact rotated NMS on the GPU ([w2 5/7]: each within 1 ms on an
/// H200), checked against the CPU forms on the same inputs. One JSON line per figure.
///   RetinaNet.Bench rotated [--anchors 2000] [--boxes 50] [--nms-boxes 20000] [--detections 100] [--iters 50]
/// </summary>
static class RotatedBench
{
    public static void Run(Func<string, string, string> opt)
    {
        var device = cuda.is_available() ? CUDA : CPU;
        int anchors = int.Parse(opt("anchors", "2000")), boxes = int.Parse(opt("boxes", "50"));
        int nmsBoxes = int.Parse(opt("nms-boxes", "20000")), detections = int.Parse(opt("detections", "100"));
        int iters = int.Parse(opt("iters", "50"));
        using var scope = NewDisposeScope();
        var g = new Generator(0);

        // anchors of one image spread over 1024 px, boxes among them: most pairs are far apart, as in training
        var a = Corners(anchors, 1024, g).to(device);
        var b = Corners(boxes, 1024, g).to(device);
        var iouTimes = Time(iters, () => RotatedIou.Pairwise(a, b).Dispose());
        var onDevice = RotatedIou.Pairwise(a, b).cpu();
        var onCpu = RotatedIou.Pairwise(a.cpu(), b.cpu());
        double iouError = (onDevice - onCpu).abs().max().item<float>();
        Console.WriteLine($"{{\"bench\": \"rotated_iou\", \"device\": \"{device.type}\", " +
            $"\"pairs\": {(long)anchors * boxes}, \"max_abs_diff_vs_cpu\": {iouError:E2}, " +
            $"\"median_ms\": {iouTimes[iouTimes.Length / 2]:F3}, \"min_ms\": {iouTimes[0]:F3}}}");

        // NMS candidates clustered like a detector's: many overlapping boxes around a few hundred objects
        var centres = (rand(nmsBoxes / 60 + 1, 1, 2, generator: g) * Of(1100)).expand(-1, 60, 2)
            .reshape(-1, 2)[..nmsBoxes];
        var corners = Around(centres, g).unsqueeze(0).to(device);
        var scores = rand(1, nmsBoxes, generator: g).to(device);
        var classes = zeros(1, nmsBoxes, dtype: ScalarType.Int64).to(device);
        var nmsTimes = Time(iters, () => Nms(scores, corners, classes, detections).Dispose());
        using var kept = Nms(scores, corners, classes, detections);
        using var reference = HostNms.Run(scores.cpu(), corners.cpu(), classes.cpu(), null, 0.5, detections);
        bool same = kept.Indices.cpu().equal(reference.Indices).all().item<bool>();
        Console.WriteLine($"{{\"bench\": \"rotated_nms\", \"device\": \"{device.type}\", \"boxes\": {nmsBoxes}, " +
            $"\"max_detections\": {detections}, " +
            $"\"kept\": {kept.Count.cpu().item<long>()}, \"same_as_cpu\": {same.ToString().ToLowerInvariant()}, " +
            $"\"median_ms\": {nmsTimes[nmsTimes.Length / 2]:F3}, \"min_ms\": {nmsTimes[0]:F3}}}");
    }

    static NmsResult Nms(Tensor scores, Tensor corners, Tensor classes, int detections) =>
        scores.device_type == DeviceType.CUDA
            ? NmsKernel.Run(scores, corners, classes, null, 0.5, detections)
            : HostNms.Run(scores, corners, classes, null, 0.5, detections);

    static double[] Time(int iters, Action run)
    {
        for (int i = 0; i < 5; i++) run();
        if (cuda.is_available()) cuda.synchronize();
        var times = new double[iters];
        for (int i = 0; i < iters; i++)
        {
            var watch = Stopwatch.StartNew();
            run();
            if (cuda.is_available()) cuda.synchronize();
            times[i] = watch.Elapsed.TotalMilliseconds;
        }
        Array.Sort(times);
        return times;
    }

    static Tensor Corners(int n, double extent, Generator g)
    {
        using var side = extent.ToScalar();
        return Around(rand(n, 2, generator: g) * side, g);
    }

    /// <summary>Rotated boxes of 10-160 px at random angles in [-π/4, π/4] around the given centres: corners [N, 8].
    /// </summary>
    static Tensor Around(Tensor centres, Generator g)
    {
        long n = centres.shape[0];
        var size = (rand(n, 2, generator: g) * Of(150)).Plus(Of(10));
        var theta = (rand(n, 1, generator: g) - Of(0.5)) * Of(Math.PI / 2);
        var xy = centres.Plus(randn(n, 2, generator: g) * Of(20)) - size / Of(2);
        return RotatedBoxes.FromXywhTheta(cat([xy, size, theta], 1)).Corners;
    }
}
