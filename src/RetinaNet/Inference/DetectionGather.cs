using RetinaNet.Data.Coco;
using RetinaNet.Distributed;
using RetinaNet.Evaluation;
using static TorchSharp.torch;

namespace RetinaNet.Inference;

/// <summary>Detections of a multi-process inference, every rank's shard brought to rank 0: each rank packs its
/// detections as float64 rows (image id, category, x, y, w, h, score, theta or NaN: exact for ids below 2^53), the
/// ranks exchange
/// their row counts, then their rows padded to the largest count (two all-gathers on the device). Rank 0 puts them
/// back in dataset order — the order of a single-process run — and the other ranks get an empty list.</summary>
public static class DetectionGather
{
    const int Columns = 8;

    public static List<CocoDetection> ToRank0(ProcessGroup group, IReadOnlyList<CocoDetection> local,
        Func<long, int> datasetOrder)
    {
        using var scope = NewDisposeScope();
        using var count = tensor(new long[] { local.Count }).to(group.Device);
        var counts = group.AllGather(count).cpu().data<long>().ToArray();
        long widest = counts.Max();
        if (widest == 0) return [];
        var rows = new double[widest * Columns];
        for (int i = 0; i < local.Count; i++)
        {
            var d = local[i];
            rows.AsSpan(i * Columns, Columns).SetAll(d.ImageId, d.CategoryId, d.X, d.Y, d.W, d.H, d.Score, d.Theta
                ?? double.NaN);
        }
        var all = group.AllGather(tensor(rows, [widest, Columns]).to(group.Device)).cpu().data<double>().ToArray();
        if (!group.IsMaster) return [];
        var merged = new List<CocoDetection>((int)counts.Sum());
        for (int r = 0; r < counts.Length; r++)
            for (long i = 0; i < counts[r]; i++)
            {
                var row = all.AsSpan((int)((r * widest + i) * Columns), Columns);
                var d = new CocoDetection((long)row[0], (long)row[1], row[2], row[3], row[4], row[5], row[6]);
                merged.Add(double.IsNaN(row[7]) ? d : CocoDetections.Rotated(d, row[7]));
            }
        // stable: an image's detections all come from one rank, in that rank's order
        return [.. merged.Select((d, i) => (d,
            i)).OrderBy(x => datasetOrder(x.d.ImageId)).ThenBy(x => x.i).Select(x => x.d)];
    }

    static void SetAll(this Span<double> row, params double[] values) => values.CopyTo(row);
}
