using System.Text.Json;
using RetinaNet.Boxes;
using Xunit;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Boxes;

/// <summary>Rotated IoU and NMS against bench/tools/rotated_reference.py (exact rational arithmetic, a different
/// method: the hull of inner corners and edge crossings), on random, identical, nested, nearly parallel, zero-area,
/// touching, far-apart and large boxes.</summary>
public class RotatedIouTests
{
    static readonly JsonElement Cases =
        JsonDocument.Parse(File.ReadAllBytes(Paths.Fixture("rotated", "iou_nms_cases.json"))).RootElement;

    static float[] Floats(JsonElement e) => e.EnumerateArray().Select(x => (float)x.GetDouble()).ToArray();

    static IEnumerable<(string Kind, float[] A, float[] B, double Iou)> Pairs() =>
        Cases.GetProperty("pairs").EnumerateArray().Select(p => (p.GetProperty("kind").GetString()!,
            Floats(p.GetProperty("a")), Floats(p.GetProperty("b")), p.GetProperty("iou").GetDouble()));

    static float[] Reversed(float[] corners) =>
        [.. Enumerable.Range(0, 4).Reverse().SelectMany(i => new[] { corners[2 * i], corners[2 * i + 1] })];

    [Fact]
    public void IouEqualsTheExactReferenceOnEveryKindOfPair()
    {
        int n = 0;
        foreach (var (kind, a, b, expected) in Pairs())
        {
            Assertions.Close(expected, RotatedIou.Of(a, b), 1e-9, $"{kind} pair {n}");
            Assertions.Close(expected, RotatedIou.Of(b, a), 1e-9, $"{kind} pair {n}, swapped");
            // the same outlines walked the other way round
            Assertions.Close(expected, RotatedIou.Of(a, Reversed(b)), 1e-9, $"{kind} pair {n}, b reversed");
            Assertions.Close(expected, RotatedIou.Of(Reversed(a), b), 1e-9, $"{kind} pair {n}, a reversed");
            n++;
        }
        Assert.Equal(490, n);
    }

    static (Tensor A, Tensor B, double[] Expected) Stacked()
    {
        var pairs = Pairs().ToArray();
        return (tensor(pairs.SelectMany(p => p.A).ToArray(), [pairs.Length, 8]),
            tensor(pairs.SelectMany(p => p.B).ToArray(), [pairs.Length, 8]), pairs.Select(p => p.Iou).ToArray());
    }

    static void PairwiseMatches(Device device)
    {
        using var scope = NewDisposeScope();
        var (a, b, expected) = Stacked();
        var iou = RotatedIou.Pairwise(a.to(device), b.to(device)).cpu();
        Assert.Equal([a.shape[0], b.shape[0]], iou.shape);
        var diagonal = iou.diagonal().data<float>().ToArray();
        for (int i = 0; i < expected.Length; i++)
            Assertions.Close(expected[i], diagonal[i], 1e-6, $"pair {i} on {device}");
        // off the diagonal too: a few rows against the scalar form
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < b.shape[0]; j += 7)
                Assertions.Close(RotatedIou.Of(a[i].data<float>().ToArray(), b[j].data<float>().ToArray()),
                    iou[i, j].item<float>(), 1e-6, $"({i}, {j})");
    }

    [Fact]
    public void PairwiseOnTheCpuMatches() => PairwiseMatches(CPU);

    [GpuFact]
    public void PairwiseKernelMatches() => PairwiseMatches(CUDA);

    static void NmsMatches(Device device)
    {
        int c = 0;
        foreach (var nms in Cases.GetProperty("nms").EnumerateArray())
        {
            using var scope = NewDisposeScope();
            var expected = nms.GetProperty("kept").EnumerateArray().Select(x => (long)x.GetInt32()).ToArray();
            var scores = Floats(nms.GetProperty("scores"));
            int k = scores.Length;
            var corners = nms.GetProperty("boxes").EnumerateArray().SelectMany(Floats).ToArray();
            var classes = nms.GetProperty("classes").EnumerateArray().Select(x => (long)x.GetInt32()).ToArray();
            double threshold = nms.GetProperty("threshold").GetDouble();
            var s = tensor(scores, [1, k]).to(device);
            var bx = tensor(corners, [1, k, 8]).to(device);
            var cl = tensor(classes, [1, k]).to(device);
            // on the GPU: the kept-list kernel (every candidate may be kept, or only the first 10), and past its
            // limit the overlap bits and walk
            int[] limits = device.type == TorchSharp.DeviceType.CUDA ? [k, 10, NmsKernel.MaxKeptList + 1] : [k];
            foreach (int limit in limits)
            {
                var result = device.type == TorchSharp.DeviceType.CUDA
                    ? NmsKernel.Run(s, bx, cl, null, threshold, limit)
                    : HostNms.Run(s, bx, cl, null, threshold, limit);
                long count = result.Count.cpu().item<long>();
                Assert.Equal(expected.Take(limit), result.Indices.cpu()[0, ..(int)count].data<long>().ToArray());
                Assert.Equal(corners.AsSpan(8 * (int)expected[0], 8).ToArray(),
                    result.Boxes.cpu()[0, 0].data<float>().ToArray());
            }
            c++;
        }
        Assert.Equal(8, c);
    }

    [Fact]
    public void NmsOnTheCpuKeepsWhatGreedyExactNmsKeeps() => NmsMatches(CPU);

    [GpuFact]
    public void NmsKernelKeepsWhatGreedyExactNmsKeeps() => NmsMatches(CUDA);
}
