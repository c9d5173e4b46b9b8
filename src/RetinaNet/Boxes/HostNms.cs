using static TorchSharp.torch;

namespace RetinaNet.Boxes;

/// <summary>The greedy NMS of <see cref="BatchedNms"/> (same contract and result) as a plain loop on the host, for
/// CPU tensors: only valid candidates are visited and each is compared with the boxes kept so far, where the tensor
/// form builds and iterates a block-sized overlap matrix whatever the number of valid candidates. Hand-written: no
/// .NET library offers batched class-aware NMS; the time saved is in bench/RESULTS.md ("NMS on the CPU").</summary>
public static class HostNms
{
    /// <param name="scores">[B, K] float32, on the CPU.</param>
    /// <param name="boxes">[B, K, 4] inclusive corners, or [B, K, 8]: rotated boxes' 4 corners (exact
    /// <see cref="RotatedIou"/>).</param>
    /// <param name="classes">[B, K] integer class per candidate.</param>
    /// <param name="valid">[B, K] bool; invalid candidates are never kept (null: all valid).</param>
    public static NmsResult Run(Tensor scores, Tensor boxes, Tensor classes, Tensor? valid, double iouThreshold,
        int maxDetections)
    {
        int b = (int)scores.shape[0], k = (int)scores.shape[1], d = maxDetections, width = (int)boxes.shape[2];
        using var scope = NewDisposeScope();
        var s = scores.to(ScalarType.Float32).contiguous().data<float>().ToArray();
        var x = boxes.to(ScalarType.Float32).contiguous().data<float>().ToArray();
        var c = classes.to(ScalarType.Int64).contiguous().data<long>().ToArray();
        var v = valid?.contiguous().data<bool>().ToArray();
        var outScores = new float[b * d]; var outBoxes = new float[b * d * width]; var outClasses = new long[b * d];
        var outIndices = Enumerable.Repeat(-1L, b * d).ToArray(); var counts = new long[b];
        float threshold = (float)iouThreshold;
        var order = new List<int>(k);
        var kept = new List<int>(d);
        for (int i = 0; i < b; i++)
        {
            int row = i * k;
            order.Clear();
            for (int j = 0; j < k; j++) if (v is null || v[row + j]) order.Add(j);
            // descending score, ties in input order (a stable sort)
            var sorted = order.OrderByDescending(j => s[row + j]).ToArray();
            kept.Clear();
            foreach (int j in sorted)
            {
                if (kept.Count == d) break;
                bool suppressed = false;
                foreach (int q in kept)
                    if (c[row + q] == c[row + j]
                        && Overlaps(x, width, row + q, row + j, threshold, iouThreshold)) { suppressed = true; break; }
                if (!suppressed) kept.Add(j);
            }
            counts[i] = kept.Count;
            for (int n = 0; n < kept.Count; n++)
            {
                int j = kept[n], slot = i * d + n;
                outScores[slot] = s[row + j];
                Array.Copy(x, width * (row + j), outBoxes, width * slot, width);
                outClasses[slot] = c[row + j];
                outIndices[slot] = j;
            }
        }
        var device = scores.device;
        var result = new NmsResult(tensor(outScores, [b, d]).to(device), tensor(outBoxes, [b, d, width]).to(device),
            tensor(outClasses, [b, d]).to(classes.dtype).to(device), tensor(outIndices, [b, d]).to(device),
            tensor(counts, [b]).to(device));
        foreach (var t in new[] { result.Scores, result.Boxes, result.Classes, result.Indices, result.Count })
            t.MoveToOuterDisposeScope();
        return result;
    }

    static bool Overlaps(float[] boxes, int width, int i, int j, float threshold, double rotatedThreshold) => width == 8
        ? RotatedIou.Of(boxes.AsSpan(8 * i, 8), boxes.AsSpan(8 * j, 8)) > rotatedThreshold
        : Iou(boxes, 4 * i, 4 * j) > threshold;

    // float32 throughout, +1 for inclusive pixel corners, as the tensor form computes it
    static float Iou(float[] b, int i, int j)
    {
        float iw = MathF.Max(MathF.Min(b[i + 2], b[j + 2]) - MathF.Max(b[i], b[j]) + 1, 0);
        float ih = MathF.Max(MathF.Min(b[i + 3], b[j + 3]) - MathF.Max(b[i + 1], b[j + 1]) + 1, 0);
        float inter = iw * ih;
        float ai = (b[i + 2] - b[i] + 1) * (b[i + 3] - b[i + 1] + 1);
        float aj = (b[j + 2] - b[j] + 1) * (b[j + 3] - b[j + 1] + 1);
        return inter / (ai + aj - inter);
    }
}
