using RetinaNet.Boxes;
using Xunit;
using static RetinaNet.Native.Scalars;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Boxes;

public class NmsTests
{
    /// <summary>Textbook greedy NMS, one image at a time, in the same float32 arithmetic as the library.</summary>
    internal static List<int> BruteForce(float[] scores, float[] boxes, long[] classes, bool[] valid,
        float threshold, int max)
    {
        // stable
        var order = Enumerable.Range(0, scores.Length).Where(i => valid[i]).OrderByDescending(i => scores[i]).ToList();
        var kept = new List<int>();
        foreach (int j in order)
        {
            if (kept.Count == max) break;
            bool suppressed = kept.Any(i => classes[i] == classes[j] && Iou(boxes, i, j) > threshold);
            if (!suppressed) kept.Add(j);
        }
        return kept;
    }

    static float Iou(float[] b, int i, int j)
    {
        float iw = MathF.Max(MathF.Min(b[i * 4 + 2], b[j * 4 + 2]) - MathF.Max(b[i * 4], b[j * 4]) + 1, 0);
        float ih = MathF.Max(MathF.Min(b[i * 4 + 3], b[j * 4 + 3]) - MathF.Max(b[i * 4 + 1], b[j * 4 + 1]) + 1, 0);
        float inter = iw * ih;
        float ai = (b[i * 4 + 2] - b[i * 4] + 1) * (b[i * 4 + 3] - b[i * 4 + 1] + 1);
        float aj = (b[j * 4 + 2] - b[j * 4] + 1) * (b[j * 4 + 3] - b[j * 4 + 1] + 1);
        return inter / (ai + aj - inter);
    }

    public static TheoryData<int, int, int, int, int> Cases()
    {
        var data = new TheoryData<int, int, int, int, int>();
        // seed, candidates per image, classes, max detections, block size
        for (int seed = 0; seed < 12; seed++) data.Add(seed, 300, 3, 100, 1024);
        for (int seed = 12; seed < 20; seed++) data.Add(seed, 400, 2, 1000, 37);  // many blocks, keep everything
        for (int seed = 20; seed < 26; seed++) data.Add(seed, 250, 1, 10, 16);    // truncation mid-block
        data.Add(26, 1, 1, 5, 1024);
        data.Add(27, 64, 4, 64, 8);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void EqualsBruteForceGreedy(int seed, int n, int classCount, int max, int block) =>
        CheckAgainstBruteForce(seed, n, classCount, max, (s, b, c, v, t, m) => BatchedNms.Run(s, b, c, v, t, m, block));

    /// <summary>The CPU path's loop (<see cref="HostNms"/>) on the same cases; boxes and classes checked too.</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void HostLoopEqualsBruteForceGreedy(int seed, int n, int classCount, int max, int block)
    {
        _ = block;
        CheckAgainstBruteForce(seed, n, classCount, max, HostNms.Run);
    }

    static void CheckAgainstBruteForce(int seed, int n, int classCount, int max,
        Func<Tensor, Tensor, Tensor, Tensor?, double, int, NmsResult> nms)
    {
        using var scope = NewDisposeScope();
        var g = new Generator((ulong)seed);
        const int batch = 3;
        // Clustered boxes so suppression chains form; scores from a few levels so ties are common.
        var centres = rand(batch, n, 2, generator: g) * Of(120);
        var sizes = (rand(batch, n, 2, generator: g) * Of(60)).Plus(Of(5));
        var boxes = cat([centres, centres.Plus(sizes)], -1);
        var scores = (randint(1, 8, [batch, n], generator: g).to(ScalarType.Float32) / Of(8));
        var classes = randint(0, classCount, [batch, n], generator: g);
        var valid = rand(batch, n, generator: g) > Of(0.1);
        const float threshold = 0.5f;
        using var result = nms(scores, boxes, classes, valid, threshold, max);

        var bv = boxes.data<float>().ToArray(); var sv = scores.data<float>().ToArray();
        var cv = classes.data<long>().ToArray(); var vv = valid.data<bool>().ToArray();
        var indices = result.Indices.data<long>().ToArray();
        var counts = result.Count.data<long>().ToArray();
        var outScores = result.Scores.data<float>().ToArray();
        var outClasses = result.Classes.data<long>().ToArray();
        var outBoxes = result.Boxes.data<float>().ToArray();
        for (int b = 0; b < batch; b++)
        {
            var expected = BruteForce(sv[(b * n)..((b + 1) * n)], bv[(b * n * 4)..((b + 1) * n * 4)],
                cv[(b * n)..((b + 1) * n)], vv[(b * n)..((b + 1) * n)], threshold, max);
            Assert.Equal(expected.Count, (int)counts[b]);
            Assert.Equal(expected.Select(i => (long)i), indices[(b * max)..(b * max + expected.Count)]);
            Assert.All(indices[(b * max + expected.Count)..((b + 1) * max)], i => Assert.Equal(-1, i));
            Assert.Equal(expected.Select(i => sv[b * n + i]), outScores[(b * max)..(b * max + expected.Count)]);
            Assert.Equal(expected.Select(i => cv[b * n + i]), outClasses[(b * max)..(b * max + expected.Count)]);
            Assert.Equal(expected.SelectMany(i => bv[((b * n + i) * 4)..((b * n + i) * 4 + 4)]),
                outBoxes[(b * max * 4)..((b * max + expected.Count) * 4)]);
            Assert.All(outScores[(b * max + expected.Count)..((b + 1) * max)], v => Assert.Equal(0f, v));
        }
    }

    [Fact]
    public void DifferentClassesNeverSuppressEachOther()
    {
        using var scope = NewDisposeScope();
        var boxes = tensor(new float[] { 0, 0, 9, 9, 0, 0, 9, 9, 0, 0, 9, 9 }, [1, 3, 4]);
        using var r = BatchedNms.Run(tensor(new float[] { 0.9f, 0.8f, 0.7f }, [1, 3]), boxes,
            tensor(new long[] { 0, 1, 0 }, [1, 3]), null, 0.5, 10);
        Assert.Equal(new long[] { 0, 1, -1, -1, -1, -1, -1, -1, -1, -1 }, r.Indices.data<long>().ToArray());
        Assert.Equal(new long[] { 0, 1, 0, 0, 0, 0, 0, 0, 0, 0 }, r.Classes.data<long>().ToArray());
    }

    [Fact]
    public void SuppressedBoxNoLongerSuppresses()
    {
        // A chain: 0 suppresses 1, 1 would suppress 2, but 1 is gone so 2 stays (greedy, not "any overlap").
        using var scope = NewDisposeScope();
        var boxes = tensor(new float[] { 0, 0, 9, 9, 3, 0, 12, 9, 6, 0, 15, 9 }, [1, 3, 4]);
        using var r = BatchedNms.Run(tensor(new float[] { 0.9f, 0.8f, 0.7f }, [1, 3]), boxes,
            zeros(1, 3, dtype: ScalarType.Int64), null, 0.4, 3);
        Assert.Equal(new long[] { 0, 2, -1 }, r.Indices.data<long>().ToArray());
    }

    [Theory]
    [InlineData(30, 120, 2, 50, 16)]  // converged, one block holds all: exact
    [InlineData(31, 300, 1, 300, 16)] // keeps everything past the block: not exact
    [InlineData(32, 200, 1, 100, 1)]  // one step cannot resolve the chains: not exact
    public void WithoutHostWaitEqualsBruteForceWhenItSaysExact(int seed, int n, int classCount, int max, int steps)
    {
        using var scope = NewDisposeScope();
        var g = new Generator((ulong)seed);
        var centres = rand(1, n, 2, generator: g) * Of(120);
        var boxes = cat([centres, centres.Plus(rand(1, n, 2, generator: g) * Of(60)).Plus(Of(5))], -1);
        var scores = rand(1, n, generator: g);
        var classes = randint(0, classCount, [1, n], generator: g);
        var (result, exactFlag) = BatchedNms.RunWithoutHostWait(scores, boxes, classes, null, 0.5, max, steps,
            block: 128);
        using var _ = result;
        var expected = BruteForce(scores.data<float>().ToArray(), boxes.data<float>().ToArray(),
            classes.data<long>().ToArray(), Enumerable.Repeat(true, n).ToArray(), 0.5f, max);
        var got = result.Indices.data<long>().ToArray()[..(int)result.Count.item<long>()];
        bool same = expected.Select(i => (long)i).SequenceEqual(got);
        bool exact = exactFlag.item<bool>();
        Assert.Equal(seed == 30, exact);
        if (exact) Assert.True(same, "an exact flag must come with the greedy result");
        else Assert.False(same, "this case was built so that the shortcut differs from the greedy result");
    }
}
