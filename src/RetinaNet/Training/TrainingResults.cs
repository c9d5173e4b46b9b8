using System.Globalization;
using System.Text;
using RetinaNet.Core;
using RetinaNet.Data;
using RetinaNet.Data.Imaging;

namespace RetinaNet.Training;

/// <summary>What a training run measured, for people to look at: <c>results.csv</c> (one row per logged iteration:
/// losses, images/s, learning rate, and mAP/mAP50 where validation ran) and <c>results.png</c> (losses, learning rate
/// and mAP against the iteration), rewritten in the log folder (atomically) after each validation, at most every
/// <see cref="SaveInterval"/> for log lines (a run logging every iteration would otherwise rewrite them thousands of
/// times), and by <see cref="Save"/> at the end.</summary>
public sealed class TrainingResults(string folder)
{
    public static readonly TimeSpan SaveInterval = TimeSpan.FromSeconds(10);
    readonly System.Diagnostics.Stopwatch sinceSave = System.Diagnostics.Stopwatch.StartNew();
    bool saved;

    public static readonly string[] Columns = ["iteration", "focal_loss", "box_loss", "images_per_s", "lr", "mAP",
        "mAP50"];
    static readonly Dictionary<string, string> ColumnOf = new()
    {
        [MetricsPoster.FocalLoss] = "focal_loss", [MetricsPoster.BoxLoss] = "box_loss",
        [MetricsPoster.ImagesPerSecond] = "images_per_s", [MetricsPoster.LearningRate] = "lr", ["mAP"] = "mAP",
            ["mAP50"] = "mAP50",
    };

    readonly SortedDictionary<long, Dictionary<string, double>> rows = new();

    public string CsvPath => Path.Combine(folder, "results.csv");
    public string PlotPath => Path.Combine(folder, "results.png");

    /// <summary>Adds the numbers of one step (training metrics or validation); rewrites both files after a
    /// validation, on the first call, and when <see cref="SaveInterval"/> has passed.</summary>
    public void Add(long iteration, IReadOnlyDictionary<string, double> values)
    {
        if (!rows.TryGetValue(iteration, out var row)) rows[iteration] = row = new();
        foreach (var (name, value) in values)
            if (ColumnOf.TryGetValue(name, out var column)) row[column] = value;
        if (!saved || values.ContainsKey("mAP") || sinceSave.Elapsed >= SaveInterval) Save();
    }

    /// <summary>Writes results.csv and results.png from every row so far.</summary>
    public void Save()
    {
        saved = true;
        sinceSave.Restart();
        Directory.CreateDirectory(folder);
        AtomicFile.Write(CsvPath, stream =>
        {
            using var w = new StreamWriter(stream, new UTF8Encoding(false), leaveOpen: true);
            w.WriteLine(string.Join(',', Columns));
            foreach (var (i, r) in rows)
                w.WriteLine(string.Join(',',
                    Columns.Select(c => c == "iteration" ? i.ToString(CultureInfo.InvariantCulture)
                    : r.TryGetValue(c, out double v) ? v.ToString("R", CultureInfo.InvariantCulture) : "")));
        });
        ImageEncoder.SavePng(Render(), PlotPath);
    }

    /// <summary>Three panels over the iterations: focal and box loss, learning rate, mAP and mAP50.</summary>
    public RgbImage Render(int width = 900, int panelHeight = 220)
    {
        var panels = new (string Title, string[] Series)[]
        {
            ("loss", ["focal_loss", "box_loss"]), ("learning rate", ["lr"]), ("validation", ["mAP", "mAP50"]),
        };
        var image = new RgbImage(width, panelHeight * panels.Length,
            Enumerable.Repeat((byte)255, width * panelHeight * panels.Length * 3).ToArray());
        long first = rows.Count > 0 ? rows.Keys.First() : 0, last = rows.Count > 0 ? rows.Keys.Last() : 1;
        for (int p = 0; p < panels.Length; p++)
        {
            var (title, series) = panels[p];
            var points = series.Select(s => rows.Where(r => r.Value.ContainsKey(s)).Select(r => (X: (double)r.Key,
                Y: r.Value[s])).ToArray()).ToArray();
            var all = points.SelectMany(s => s).Select(q => q.Y).Where(double.IsFinite).ToArray();
            double lo = Math.Min(0, all.DefaultIfEmpty(0).Min()),
                hi = Math.Max(all.DefaultIfEmpty(1).Max(), lo + 1e-12);
            var plot = new LinePlot(image, 70, p * panelHeight + 30, width - 90, panelHeight - 60,
                (first, Math.Max(last, first + 1)), (lo, hi));
            string max = all.Length > 0 ? all.Max().ToString("G4", CultureInfo.InvariantCulture) : "-";
            plot.Axes($"{title} (max {max})", $"iteration {first}..{last}");
            for (int s = 0; s < series.Length; s++) plot.Series(points[s], series[s], DetectionPictures.ColorOf(s), s);
        }
        return image;
    }
}
