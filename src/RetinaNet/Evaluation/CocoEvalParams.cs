namespace RetinaNet.Evaluation;

/// <summary>COCOeval's default bbox parameters, computed bit for bit as pycocotools computes them (numpy's
/// <c>linspace</c> is <c>k * step + start</c> with the last value set to <c>stop</c>), because detection IoUs and
/// recalls are compared against these exact doubles.</summary>
static class CocoEvalParams
{
    public static readonly double[] IouThresholds = Linspace(0.5, 0.95, 10);
    public static readonly double[] RecallThresholds = Linspace(0.0, 1.0, 101);
    /// <summary>all, small, medium, large: inclusive [lo, hi] on the ground truth's <c>area</c> field.</summary>
    public static readonly (double Lo, double Hi)[] AreaRanges = [(0, 1e5 * 1e5), (0, 32 * 32), (32 * 32, 96 * 96),
        (96 * 96, 1e5 * 1e5)];
    public static readonly string[] AreaLabels = ["all", "small", "medium", "large"];
    public static readonly int[] MaxDets = [1, 10, 100];

    public static int T => IouThresholds.Length;
    public static int R => RecallThresholds.Length;
    public static int A => AreaRanges.Length;
    public static int M => MaxDets.Length;

    static double[] Linspace(double start, double stop, int num)
    {
        var y = new double[num];
        double step = (stop - start) / (num - 1);
        for (int k = 0; k < num; k++) y[k] = k * step + start;
        y[^1] = stop;
        return y;
    }

    /// <summary>Index of an IoU threshold compared with <c>==</c>, as summarize() does with <c>np.where</c>; -1 if
    /// none.</summary>
    public static int IouIndex(double iou) => Array.IndexOf(IouThresholds, iou);
}
