namespace RetinaNet.Export.Quantization;

/// <summary>entropy: TensorRT's entropy calibration (S. Migacz, "8-bit Inference with TensorRT", GTC 2017, the
/// algorithm behind IInt8EntropyCalibrator2). For every candidate i from 128 bins to all of them: the reference P is
/// the first i bins with everything beyond added to the last one; the candidate Q merges those i bins into 128 int8
/// levels (bin j goes to level ⌊128 j / i⌋) and spreads each level's count evenly over its non-empty bins (empty
/// bins stay empty). The i with the smallest KL(P ‖ Q), both normalised, wins (the last one on ties, as NVIDIA's
/// pytorch-quantization), and amax = (i + 0.5) bin widths: the slide's formula, which TensorRT's own caches bear out
/// (their ranges are (i + 0.5)/2048 of a histogram range; e.g. 3c010a14 = 2048.5/2048/127, in the TRT 8.6 table of
/// ultralytics/ultralytics#14121). As pytorch-quantization, bin 0 first takes bin 1's count: the spike of exact zeros
/// after a ReLU would otherwise dominate the divergence and force heavy clipping.</summary>
public static class EntropyThreshold
{
    public const int Int8Levels = 128;

    public static double Amax(AbsHistogram histogram, int levels = Int8Levels, int startBin = Int8Levels)
    {
        var bins = (double[])histogram.Counts.Clone();
        int n = bins.Length;
        if (n > 1) bins[0] = bins[1];
        if (n <= startBin) return (n + 0.5) * histogram.BinWidth;
        var prefix = new double[n + 1];
        var nonEmpty = new int[n + 1];
        for (int j = 0; j < n; j++)
        {
            prefix[j + 1] = prefix[j] + bins[j];
            nonEmpty[j + 1] = nonEmpty[j] + (bins[j] != 0 ? 1 : 0);
        }
        double total = prefix[n];
        if (total == 0) return (n + 0.5) * histogram.BinWidth;
        double best = double.PositiveInfinity;
        int bestBins = n;
        for (int i = startBin; i <= n; i++)
        {
            double divergence = Divergence(bins, prefix, nonEmpty, i, levels, total);
            if (divergence <= best) (best, bestBins) = (divergence, i);
        }
        return (bestBins + 0.5) * histogram.BinWidth;
    }

    /// <summary>KL(P ‖ Q) for the first <paramref name="kept"/> bins (see the class summary).</summary>
    static double Divergence(double[] bins, double[] prefix, int[] nonEmpty, int kept, int levels, double total)
    {
        double keptTotal = prefix[kept], outliers = total - keptTotal;
        if (keptTotal == 0) return double.PositiveInfinity;
        double divergence = 0;
        for (int level = 0; level < levels; level++)
        {
            // bins j with ⌊levels·j / kept⌋ = level: j in [⌈level·kept/levels⌉, ⌈(level+1)·kept/levels⌉)
            int start = (int)(((long)level * kept + levels - 1) / levels),
                end = (int)(((long)(level + 1) * kept + levels - 1) / levels);
            int count = nonEmpty[end] - nonEmpty[start];
            double spread = count > 0 ? (prefix[end] - prefix[start]) / count : 0;
            for (int j = start; j < end; j++)
            {
                double p = bins[j] + (j == kept - 1 ? outliers : 0);
                if (p == 0) continue;
                double q = bins[j] != 0 ? spread : 0;
                if (q == 0) return double.PositiveInfinity;
                p /= total; q /= keptTotal;
                divergence += p * Math.Log(p / q);
            }
        }
        return divergence;
    }
}
