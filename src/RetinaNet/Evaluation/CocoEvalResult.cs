using RetinaNet.Core;
using System.Text;
using RetinaNet.Data.Coco;
using static RetinaNet.Evaluation.CocoEvalParams;

namespace RetinaNet.Evaluation;

/// <summary>One category's figures: AP at IoU .50:.95 and at .50 (area all, maxDets 100; -1 without ground truth)
/// and its number of non-crowd ground-truth objects.</summary>
public sealed record CategoryEvalResult(long CategoryId, string Name, double Ap, double Ap50, int GtCount);

/// <summary>COCOeval's accumulated results: the 12 summary stats, per-category AP, and pycocotools'
/// printout.</summary>
public sealed class CocoEvalResult
{
    public static readonly IReadOnlyList<string> StatNames = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10",
        "AR100", "ARs", "ARm", "ARl"];

    /// <summary>summarize()'s lines: (AP or AR, IoU threshold or null for .50:.95, area label, maxDets).</summary>
    static readonly (bool Ap, double? Iou, string Area, int MaxDets)[] Lines =
    [
        (true, null, "all", 100), (true, 0.5, "all", 100), (true, 0.75, "all", 100),
        (true, null, "small", 100), (true, null, "medium", 100), (true, null, "large", 100),
        (false, null, "all", 1), (false, null, "all", 10), (false, null, "all", 100),
        (false, null, "small", 100), (false, null, "medium", 100), (false, null, "large", 100),
    ];

    readonly double[] precision, recall;
    readonly int K;

    /// <summary>summarize()'s 12 numbers, in <see cref="StatNames"/> order.</summary>
    public double[] Stats { get; }
    public IReadOnlyList<CategoryEvalResult> PerCategory { get; }

    internal CocoEvalResult(CocoCategory[] categories, double[] precision, double[] recall, int[] gtCounts)
    {
        (this.precision, this.recall, K) = (precision, recall, categories.Length);
        Stats = Lines.Select(l => Summarize(l.Ap, l.Iou, Array.IndexOf(AreaLabels, l.Area),
            Array.IndexOf(MaxDets, l.MaxDets), null)).ToArray();
        PerCategory = categories.Select((c, k) => new CategoryEvalResult(c.Id, c.Name,
            Summarize(true, null, 0, M - 1, k), Summarize(true, 0.5, 0, M - 1, k), gtCounts[k])).ToArray();
    }

    /// <summary>Precision[t, r, k, a, m] as COCOeval's <c>eval['precision']</c> (-1 where no ground truth).</summary>
    public double Precision(int t, int r, int k, int a, int m) => precision[(((t * R + r) * K + k) * A + a) * M + m];
    /// <summary>Recall[t, k, a, m] as COCOeval's <c>eval['recall']</c>.</summary>
    public double Recall(int t, int k, int a, int m) => recall[((t * K + k) * A + a) * M + m];

    /// <summary>_summarize: the mean of the selected cells that are > -1, or -1 if none (category k only, if
    /// given).</summary>
    double Summarize(bool ap, double? iou, int a, int m, int? category)
    {
        int tFrom = 0, tTo = T;
        if (iou is double threshold)
        {
            int t = IouIndex(threshold);
            if (t < 0) return -1; // np.where finds nothing: an empty selection
            (tFrom, tTo) = (t, t + 1);
        }
        int kFrom = category ?? 0, kTo = category is int c ? c + 1 : K;
        double sum = 0;
        long count = 0;
        for (int t = tFrom; t < tTo; t++)
            for (int k = kFrom; k < kTo; k++)
            {
                if (ap)
                    for (int r = 0; r < R; r++) Add(Precision(t, r, k, a, m));
                else Add(Recall(t, k, a, m));
            }
        return count == 0 ? -1 : sum / count;

        void Add(double v)
        {
            if (v > -1) { sum += v; count++; }
        }
    }

    /// <summary>The 12 lines summarize() prints, character for character.</summary>
    public string SummaryText()
    {
        var sb = new StringBuilder();
        for (int i = 0; i < Lines.Length; i++)
        {
            var (ap, iou, area, maxDets) = Lines[i];
            string iouText = iou is double v ? v.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture)
                : "0.50:0.95";
            sb.Append(' ').Append((ap ? "Average Precision" : "Average Recall").PadRight(18)).Append(' ').Append(ap
                ? "(AP)" : "(AR)")
              .Append(" @[ IoU=").Append(iouText.PadRight(9)).Append(" | area=").Append(area.PadLeft(6))
              .Append(" | "
              + "maxDets=").Append(maxDets.ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(3))
              .Append(" ] = ").Append(PythonFormat.Fixed(Stats[i], 3)).Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>Per-category AP (IoU .50:.95), AP50 and non-crowd object count, one row per category in id
    /// order.</summary>
    public string PerCategoryTable()
    {
        int width = Math.Max(8, PerCategory.Count == 0 ? 0 : PerCategory.Max(c => c.Name.Length));
        var sb = new StringBuilder();
        sb.Append("category".PadRight(width)).Append("      AP    AP50      #gt\n");
        foreach (var c in PerCategory)
            sb.Append(c.Name.PadRight(width)).Append(' ').Append(PythonFormat.Fixed(c.Ap, 3).PadLeft(7)).Append(' ')
              .Append(PythonFormat.Fixed(c.Ap50, 3).PadLeft(7)).Append(' ')
              .Append(c.GtCount.ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(8)).Append('\n');
        return sb.ToString();
    }
}
