using RetinaNet.Data.Coco;
using static RetinaNet.Evaluation.CocoEvalParams;

namespace RetinaNet.Evaluation;

/// <summary>COCOeval's evaluateImg and accumulate for one category: match every image's detections to its ground
/// truth at each area range and IoU threshold, then turn the matches, pooled over images in score order, into
/// precision at the 101 recall points and the final recall. Writes only category k's cells of the result arrays,
/// so categories run in parallel.</summary>
sealed class CategoryEvaluation
{
    const byte FalsePositive = 0, TruePositive = 1, Ignored = 2;
    static readonly double Eps = Math.BitIncrement(1.0) - 1.0; // np.spacing(1)

    readonly EvalIndex index;
    readonly int k;
    // Kept detections (at most maxDets[-1] per image), in image order then score order: what accumulate concatenates.
    int[] kept = [];
    int[] rank = [];
    int n;
    // state[(a * T + t) * n + p]: what kept detection p counts as at area range a and IoU threshold t.
    byte[] state = [];
    readonly int[] nonIgnoredGts = new int[A];
    // Scratch for one image.
    double[] ious = new double[64];
    bool[] gtIgnore = new bool[8], gtMatched = new bool[8], gtCrowd = new bool[8];
    int[] gtSorted = new int[8];

    CategoryEvaluation(EvalIndex index, int k) => (this.index, this.k) = (index, k);

    /// <summary>Fills precision[T, R, K, A, M] and recall[T, K, A, M] (C order) for category k; cells without ground
    /// truth stay -1.</summary>
    public static void Run(EvalIndex index, int k, double[] precision, double[] recall)
    {
        var e = new CategoryEvaluation(index, k);
        e.KeepTopDetections();
        e.MatchImages();
        e.Accumulate(precision, recall);
    }

    void KeepTopDetections()
    {
        int from = index.DetStart[k], to = index.DetStart[k + 1];
        kept = new int[to - from];
        rank = new int[to - from];
        int maxDet = MaxDets[^1];
        for (int j = from, r = 0; j < to; j++)
        {
            int det = index.DetOrder[j];
            r = j > from && index.DetImage[index.DetOrder[j - 1]] == index.DetImage[det] ? r + 1 : 0;
            if (r >= maxDet) continue;
            kept[n] = det;
            rank[n++] = r;
        }
        state = new byte[A * T * n];
    }

    void MatchImages()
    {
        int gi = index.GtStart[k], gEnd = index.GtStart[k + 1], di = 0;
        while (gi < gEnd || di < n)
        {
            int image = Math.Min(gi < gEnd ? index.GtImage[index.GtOrder[gi]] : int.MaxValue, di < n
                ? index.DetImage[kept[di]] : int.MaxValue);
            int g0 = gi, d0 = di;
            while (gi < gEnd && index.GtImage[index.GtOrder[gi]] == image) gi++;
            while (di < n && index.DetImage[kept[di]] == image) di++;
            MatchImage(g0, gi - g0, d0, di - d0);
        }
    }

    /// <summary>evaluateImg for one image: gts GtOrder[g0 ..+G) (file order), kept detections [d0 ..+D) (score
    /// order).</summary>
    void MatchImage(int g0, int G, int d0, int D)
    {
        var gts = index.Gts;
        var dets = index.Dets;
        if (ious.Length < D * G) ious = new double[Math.Max(D * G, 2 * ious.Length)];
        if (gtIgnore.Length < G) { gtIgnore = new bool[2 * G]; gtMatched = new bool[2 * G]; gtCrowd = new bool[2 * G];
            gtSorted = new int[2 * G]; }
        for (int g = 0; g < G; g++) gtCrowd[g] = gts[index.GtOrder[g0 + g]].IsCrowd;
        if (G == 0) { NothingToMatch(d0, D); return; }
        if (index.IouType == IouType.Segm) MaskIous(g0, G, d0, D);
        else
            for (int d = 0; d < D; d++)
                for (int g = 0; g < G; g++)
                    ious[d * G + g] = BoxIou.Iou(dets[kept[d0 + d]], gts[index.GtOrder[g0 + g]]);

        for (int a = 0; a < A; a++)
        {
            var (lo, hi) = AreaRanges[a];
            // gt ignore flags; gts sorted ignore-last, keeping file order within each group (stable argsort).
            int s = 0;
            for (int g = 0; g < G; g++)
            {
                var gt = gts[index.GtOrder[g0 + g]];
                gtIgnore[g] = gt.IsCrowd || gt.Area < lo || gt.Area > hi;
                if (!gtIgnore[g]) gtSorted[s++] = g;
            }
            nonIgnoredGts[a] += s;
            for (int g = 0; g < G; g++) if (gtIgnore[g]) gtSorted[s++] = g;

            for (int t = 0; t < T; t++)
            {
                Array.Clear(gtMatched, 0, G);
                int row = (a * T + t) * n + d0;
                for (int d = 0; d < D; d++)
                {
                    double best = Math.Min(IouThresholds[t], 1 - 1e-10);
                    int m = -1;
                    for (int j = 0; j < G; j++)
                    {
                        int g = gtSorted[j];
                        // a matched gt takes no other detection, unless it is a crowd region
                        if (gtMatched[g] && !gtCrowd[g]) continue;
                        // once matched to a regular gt, stop at the first ignored one (they are last)
                        if (m > -1 && !gtIgnore[m] && gtIgnore[g]) break;
                        double iou = ious[d * G + g];
                        if (iou < best) continue;
                        best = iou;
                        m = g;
                    }
                    var det = dets[kept[d0 + d]];
                    double area = det.W * det.H; // loadRes: area = w * h
                    bool outside = area < lo || area > hi;
                    if (m == -1) { state[row + d] = outside ? Ignored : FalsePositive; continue; }
                    gtMatched[m] = true;
                    // COCOeval records the match as the gt's id, and treats id 0 as "no match".
                    bool matched = gts[index.GtOrder[g0 + m]].Id != 0;
                    bool ignored = gtIgnore[m] || (!matched && outside);
                    state[row + d] = ignored ? Ignored : matched ? TruePositive : FalsePositive;
                }
            }
        }
    }

    /// <summary>COCOeval's segm IoUs: the regions rasterised at the image's size (COCO.annToRLE; a detection
    /// without a polygon is its box, as loadRes makes it), compared pixel for pixel.</summary>
    void MaskIous(int g0, int G, int d0, int D)
    {
        var (height, width) = index.ImageSize(index.GtImage[index.GtOrder[g0]]);
        var gtMasks = new MaskRle[G];
        for (int g = 0; g < G; g++) gtMasks[g] = index.GtMask(index.GtOrder[g0 + g], height, width);
        for (int d = 0; d < D; d++)
        {
            var mask = index.DetMask(kept[d0 + d], height, width);
            for (int g = 0; g < G; g++) ious[d * G + g] = MaskRle.Iou(mask, gtMasks[g], gtCrowd[g]);
        }
    }

    /// <summary>An image with detections but no ground truth: every detection is a false positive, or ignored where
    /// its own area is outside the range.</summary>
    void NothingToMatch(int d0, int D)
    {
        for (int d = 0; d < D; d++)
        {
            var det = index.Dets[kept[d0 + d]];
            double area = det.W * det.H;
            for (int a = 0; a < A; a++)
            {
                byte st = area < AreaRanges[a].Lo || area > AreaRanges[a].Hi ? Ignored : FalsePositive;
                for (int t = 0; t < T; t++) state[(a * T + t) * n + d0 + d] = st;
            }
        }
    }

    void Accumulate(double[] precision, double[] recall)
    {
        int K = index.CategoryCount;
        // Pool the images' detections in score order; ties keep concatenation order (mergesort on -score).
        var keys = new EvalIndex.SortKey[n];
        for (int p = 0; p < n; p++) keys[p] = new(0, EvalIndex.DescendingKey(index.Dets[kept[p]].Score), p);
        Array.Sort(keys);
        // For each maxDets: the pooled order, restricted to each image's top maxDets (e['dtScores'][0:maxDet]).
        var pooled = new int[M][];
        for (int m = 0; m < M; m++)
        {
            var list = new List<int>(n);
            foreach (var key in keys)
                if (rank[key.Item] < MaxDets[m]) list.Add(key.Item);
            pooled[m] = [.. list];
        }
        var fpAtTp = new int[n];
        var bestFrom = new double[n + 1];
        for (int a = 0; a < A; a++)
        {
            int npig = nonIgnoredGts[a];
            if (npig == 0) continue; // no ground truth: stays -1
            for (int t = 0; t < T; t++)
            {
                int row = (a * T + t) * n;
                for (int m = 0; m < M; m++)
                {
                    // COCOeval's rc/pr arrays, kept only at true positives: rc rises only there, an ignored detection
                    // repeats its predecessor's values and a false positive lowers pr, so searchsorted(rc, recThrs,
                    // 'left') on the interpolated (right-to-left max) precision only ever lands on these values.
                    int tps = 0, fps = 0;
                    foreach (int p in pooled[m])
                    {
                        byte st = state[row + p];
                        if (st == TruePositive) fpAtTp[tps++] = fps;
                        else if (st == FalsePositive) fps++;
                    }
                    recall[((t * K + k) * A + a) * M + m] = (double)tps / npig;
                    bestFrom[tps] = 0;
                    for (int i = tps - 1; i >= 0; i--)
                    {
                        double tp = i + 1, pr = tp / (fpAtTp[i] + tp + Eps);
                        bestFrom[i] = Math.Max(pr, bestFrom[i + 1]);
                    }
                    // recall points past the last true positive keep precision 0 (COCOeval's IndexError)
                    for (int r = 0, i = 0; r < R; r++)
                    {
                        while (i < tps && (double)(i + 1) / npig < RecallThresholds[r]) i++;
                        precision[(((t * R + r) * K + k) * A + a) * M + m] = i < tps ? bestFrom[i] : 0;
                    }
                }
            }
        }
    }
}

/// <summary>pycocotools' bbIou (maskApi.c), in doubles and in its order of operations (so ties at a threshold
/// fall the same way): for a crowd gt the union is the detection's own area.</summary>
static class BoxIou
{
    public static double Iou(in CocoDetection d, Data.Coco.CocoAnnotation g)
    {
        double w = Math.Min(d.W + d.X, g.W + g.X) - Math.Max(d.X, g.X);
        if (w <= 0) return 0;
        double h = Math.Min(d.H + d.Y, g.H + g.Y) - Math.Max(d.Y, g.Y);
        if (h <= 0) return 0;
        double i = w * h, da = d.W * d.H;
        double u = g.IsCrowd ? da : da + g.W * g.H - i;
        return i / u;
    }
}
