using System.Globalization;
using RetinaNet.Data.Coco;
using RetinaNet.Evaluation;
using SkiaSharp;

namespace RetinaNet.Data.Imaging;

/// <summary>One picture of a <see cref="ContactSheet"/>: the image, its detections and ground truth (image pixel
/// coordinates, COCO category ids) and a caption (its file name).</summary>
public sealed record ContactSheetImage(RgbImage Image, IReadOnlyList<CocoDetection> Detections,
    IReadOnlyList<CocoAnnotation> GroundTruth, string? Caption = null);

public sealed record ContactSheetOptions
{
    public int Columns { get; init; } = 3;
    /// <summary>The first this many images are drawn.</summary>
    public int MaxImages { get; init; } = 12;
    /// <summary>Longest side of each picture on the sheet, in pixels: 384 shows a 128-pixel image 3x.</summary>
    public int CellSize { get; init; } = 384;
    public double MinScore { get; init; } = 0.3;
    /// <summary>The best this many detections scoring at least <see cref="MinScore"/> are drawn on each
    /// image.</summary>
    public int MaxDetectionsPerImage { get; init; } = 8;
    public string Title { get; init; } = "Detections";
    /// <summary>The line under the title; null: what is shown (images, enlargement, which detections).</summary>
    public string? Subtitle { get; init; }
}

/// <summary>Where image <c>i</c> lies on the sheet: its pixel (x, y) is drawn at (Left + Scale * x, Top + Scale * y).
/// </summary>
public readonly record struct ContactSheetCell(int Left, int Top, float Scale, int Width, int Height)
{
    public (float X, float Y) ToSheet(double x, double y) => ((float)(Left + Scale * x), (float)(Top + Scale * y));
}

public sealed record ContactSheetLayout(int Width, int Height, IReadOnlyList<ContactSheetCell> Cells);

/// <summary>A picture people want to look at: a grid of images, each enlarged to
/// <see cref="ContactSheetOptions.CellSize"/> (nearest-neighbour for whole-number enlargements, so pixels stay sharp),
/// with its ground truth as dashed green boxes just outside the true edges, its best detections as solid boxes just
/// inside theirs in a colour per class (<see cref="DetectionPictures.ColorOf"/>), each labelled "class score" in the
/// embedded font, and a caption; above the grid a title, a line saying what is shown, and a legend of the classes
/// present. Drawn with Skia.</summary>
public static class ContactSheet
{
    public const int Margin = 20, Gutter = 18, CaptionHeight = 22;
    public const float TitleSize = 22, TextSize = 13, LabelSize = 13, CaptionSize = 12;
    /// <summary>Prediction boxes: this many pixels inside the box edge; ground truth: 2 pixels outside it.</summary>
    public const int PredictionThickness = 3, GroundTruthThickness = 2;
    public static readonly (byte R, byte G, byte B) Background = (32, 34, 38);
    static readonly SKColor TitleInk = new(240, 240, 242), TextInk = new(176, 180, 188);
    static readonly SKColor CaptionInk = new(214, 216, 220);
    static readonly SKColor Halo = new(0, 0, 0, 150);

    /// <summary>The sheet of the first images of <paramref name="annotations"/>: <paramref name="images"/>[i] is the
    /// image of <c>annotations.Images[i]</c>; its detections are those with its image id, its ground truth its
    /// annotations, its caption its file name.</summary>
    public static RgbImage Render(CocoFile annotations, IReadOnlyList<RgbImage> images,
        IEnumerable<CocoDetection> detections, ContactSheetOptions? options = null) =>
        Render(ImagesOf(annotations, images, detections), new CategoryMap(annotations.Categories), options);

    public static RgbImage Render(IReadOnlyList<ContactSheetImage> images, CategoryMap categories,
        ContactSheetOptions? options = null)
    {
        var plan = new Plan(images, categories, options ?? new ContactSheetOptions());
        using var bitmap = new SKBitmap(SkiaPixels.InfoOf(plan.Width, plan.Height));
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SkiaPixels.ToSk(Background));
            DrawHeader(canvas, plan);
            for (int i = 0; i < plan.Cells.Count; i++) DrawCell(canvas, plan, i);
        }
        return SkiaPixels.ToRgb(bitmap);
    }

    /// <summary>The sheet's size and where each image goes, without drawing it.</summary>
    public static ContactSheetLayout Layout(IReadOnlyList<ContactSheetImage> images, CategoryMap categories,
        ContactSheetOptions? options = null)
    {
        var plan = new Plan(images, categories, options ?? new ContactSheetOptions());
        return new ContactSheetLayout(plan.Width, plan.Height, plan.Cells);
    }

    public static IReadOnlyList<ContactSheetImage> ImagesOf(CocoFile annotations, IReadOnlyList<RgbImage> images,
        IEnumerable<CocoDetection> detections)
    {
        if (images.Count != annotations.Images.Count)
            throw new ArgumentException(
                $"{images.Count} images for the {annotations.Images.Count} of {annotations.Path}", nameof(images));
        var byImage = detections.ToLookup(d => d.ImageId);
        var truth = annotations.Annotations.ToLookup(a => a.ImageId);
        return annotations.Images.Select((info, i) => new ContactSheetImage(
            images[i], byImage[info.Id].ToList(), truth[info.Id].ToList(), info.FileName)).ToList();
    }

    sealed record Prediction(CocoDetection Detection, int Class, string Label);

    static SKColor ColorOf(Prediction p) => SkiaPixels.ToSk(DetectionPictures.ColorOf(p.Class));

    /// <summary>Everything measured before anything is drawn: what is shown, the header's lines, where each image
    /// goes.</summary>
    sealed class Plan
    {
        public readonly ContactSheetOptions Options;
        public readonly IReadOnlyList<ContactSheetImage> Images;
        public readonly List<List<Prediction>> Predictions = [];
        public readonly List<ContactSheetCell> Cells = [];
        /// <summary>Each image's whole cell: caption line and picture area.</summary>
        public readonly List<SKRectI> Frames = [];
        public readonly List<(string Name, int Class)> Legend = [];
        public readonly List<List<(float X, int Item)>> LegendRows = [];
        public readonly string Subtitle;
        public readonly int Width, Height, TitleTop, SubtitleTop, LegendTop, LegendRowHeight;
        public readonly float TitleFontSize;

        public Plan(IReadOnlyList<ContactSheetImage> all, CategoryMap categories, ContactSheetOptions options)
        {
            Check(options);
            if (all.Count == 0) throw new ArgumentException("a contact sheet needs at least one image", nameof(all));
            Options = options;
            Images = all.Take(options.MaxImages).ToList();
            var classes = new SortedDictionary<int, string>();
            foreach (var image in Images)
            {
                var shown = new List<Prediction>();
                var best = image.Detections.Where(d => d.Score >= options.MinScore && IsFinite(d.X, d.Y, d.W, d.H))
                    .OrderByDescending(d => d.Score).Take(options.MaxDetectionsPerImage);
                foreach (var d in best)
                {
                    var (c, name) = DetectionPictures.ClassOf(categories, d.CategoryId);
                    shown.Add(new Prediction(d, c, DetectionPictures.LabelOf(name, d.Score)));
                    classes.TryAdd(c, name);
                }
                Predictions.Add(shown);
                foreach (var g in image.GroundTruth)
                {
                    var (c, name) = DetectionPictures.ClassOf(categories, g.CategoryId);
                    classes.TryAdd(c, name);
                }
            }
            Legend.AddRange(classes.Select(kv => (kv.Value, kv.Key)));

            // Every image scaled so its longest side is CellSize; the rows as high as the highest of them.
            var scales = Images.Select(i => (float)options.CellSize / Math.Max(i.Image.Width, i.Image.Height))
                .ToList();
            int columns = Math.Min(options.Columns, Images.Count), rows = (Images.Count + columns - 1) / columns;
            int cellHeight = Images.Select((i, k) => (int)MathF.Round(i.Image.Height * scales[k])).Max();
            Width = 2 * Margin + columns * options.CellSize + (columns - 1) * Gutter;
            Subtitle = options.Subtitle ?? DefaultSubtitle(all.Count, scales);

            using var title = EmbeddedFont.Create(TitleSize, bold: true);
            float titleWidth = title.MeasureText(options.Title);
            float room = Width - 2 * Margin;
            TitleFontSize = titleWidth > room ? TitleSize * room / titleWidth : TitleSize;
            using var text = EmbeddedFont.Create(TextSize);
            TitleTop = Margin;
            SubtitleTop = TitleTop + LineHeight(TitleFontSize) + 4;
            LegendTop = SubtitleTop + LineHeight(TextSize) + 10;
            LegendRowHeight = LegendItemHeight(text) + 6;
            float x = Margin;
            LegendRows.Add([]);
            for (int item = -1; item < Legend.Count; item++) // -1: ground truth
            {
                float w = LegendItemWidth(text, item < 0 ? GroundTruthName : Legend[item].Name);
                if (x > Margin && x + w > Width - Margin) { LegendRows.Add([]); x = Margin; }
                LegendRows[^1].Add((x, item));
                x += w + 18;
            }
            int gridTop = LegendTop + LegendRows.Count * LegendRowHeight + 8;
            for (int k = 0; k < Images.Count; k++)
            {
                var image = Images[k].Image;
                int w = (int)MathF.Round(image.Width * scales[k]), h = (int)MathF.Round(image.Height * scales[k]);
                int cellLeft = Margin + k % columns * (options.CellSize + Gutter);
                int cellTop = gridTop + k / columns * (CaptionHeight + cellHeight + Gutter);
                Cells.Add(new ContactSheetCell(cellLeft + (options.CellSize - w) / 2, cellTop + CaptionHeight,
                    scales[k], w, h));
                Frames.Add(SKRectI.Create(cellLeft, cellTop, options.CellSize, CaptionHeight + cellHeight));
            }
            Height = gridTop + rows * (CaptionHeight + cellHeight) + (rows - 1) * Gutter + Margin;
        }

        string DefaultSubtitle(int total, List<float> scales)
        {
            var o = Options;
            var invariant = CultureInfo.InvariantCulture;
            string count = Images.Count == total ? $"{total} images" : $"{Images.Count} of {total} images";
            string size = !scales.All(s => s == scales[0]) ? string.Create(invariant, $", {o.CellSize} pixels wide")
                : scales[0] == 1 ? "" : string.Create(invariant, $", enlarged {scales[0]:0.##}\u00d7");
            return string.Create(invariant,
                $"{count}{size}. Predictions: the best {o.MaxDetectionsPerImage} per image scoring " +
                $"{o.MinScore:0.00} or more, solid, a colour per class. Ground truth: dashed green.");
        }
    }

    const string GroundTruthName = "ground truth";

    static void Check(ContactSheetOptions o)
    {
        static void Require(bool ok, string name, object value, string rule)
        {
            if (!ok) throw new ArgumentOutOfRangeException(name, value, rule);
        }
        Require(o.Columns >= 1, nameof(o.Columns), o.Columns, "at least 1 column");
        Require(o.MaxImages >= 1, nameof(o.MaxImages), o.MaxImages, "at least 1 image");
        Require(o.CellSize >= 16, nameof(o.CellSize), o.CellSize, "at least 16 pixels");
        Require(o.MaxDetectionsPerImage >= 0, nameof(o.MaxDetectionsPerImage), o.MaxDetectionsPerImage, "0 or more");
        Require(!double.IsNaN(o.MinScore), nameof(o.MinScore), o.MinScore, "a number");
    }

    // Explicit casts to float: CocoDetection's numbers may be float or double.
    static bool IsFinite(double x, double y, double w, double h) =>
        float.IsFinite((float)x) && float.IsFinite((float)y) && float.IsFinite((float)w) && float.IsFinite((float)h);

    static int LineHeight(float size)
    {
        using var font = EmbeddedFont.Create(size);
        return (int)MathF.Ceiling(font.Metrics.Descent - font.Metrics.Ascent);
    }

    static int LegendItemHeight(SKFont font) => TextLabel.Measure(font, "Ag").Height;

    /// <summary>A legend item: a ground-truth swatch and its name, or a class's label chip.</summary>
    static float LegendItemWidth(SKFont font, string name) =>
        name == GroundTruthName ? 28 + font.MeasureText(name) : TextLabel.Measure(font, name).Width;

    static void DrawHeader(SKCanvas canvas, Plan plan)
    {
        using var title = EmbeddedFont.Create(plan.TitleFontSize, bold: true);
        using var text = EmbeddedFont.Create(TextSize);
        using var titleInk = new SKPaint { Color = TitleInk, IsAntialias = true };
        using var textInk = new SKPaint { Color = TextInk, IsAntialias = true };
        canvas.DrawText(plan.Options.Title, Margin, plan.TitleTop - title.Metrics.Ascent, SKTextAlign.Left, title,
            titleInk);
        string subtitle = Fit(text, plan.Subtitle, plan.Width - 2 * Margin);
        canvas.DrawText(subtitle, Margin, plan.SubtitleTop - text.Metrics.Ascent, SKTextAlign.Left, text, textInk);
        int itemHeight = LegendItemHeight(text);
        for (int row = 0; row < plan.LegendRows.Count; row++)
        {
            int top = plan.LegendTop + row * plan.LegendRowHeight;
            foreach (var (x, item) in plan.LegendRows[row])
            {
                if (item >= 0)
                {
                    var (name, c) = plan.Legend[item];
                    TextLabel.Draw(canvas, text, name, (int)x, top, SkiaPixels.ToSk(DetectionPictures.ColorOf(c)));
                    continue;
                }
                int l = (int)x + 2, t = top + 3, r = (int)x + 22, b = top + itemHeight - 3;
                DrawGroundTruthBox(canvas, l, t, r, b);
                float baseline = top + (itemHeight - text.Metrics.Descent - text.Metrics.Ascent) / 2;
                canvas.DrawText(GroundTruthName, x + 28, baseline, SKTextAlign.Left, text, textInk);
            }
        }
    }

    static void DrawCell(SKCanvas canvas, Plan plan, int k)
    {
        var cell = plan.Cells[k];
        var source = plan.Images[k];
        var predictions = plan.Predictions[k];

        using (var caption = EmbeddedFont.Create(CaptionSize))
        using (var captionInk = new SKPaint { Color = CaptionInk, IsAntialias = true })
        using (var countInk = new SKPaint { Color = TextInk, IsAntialias = true })
        {
            var frame = plan.Frames[k];
            int cellLeft = frame.Left, cellRight = frame.Right;
            float baseline = cell.Top - 7;
            string counts = string.Create(CultureInfo.InvariantCulture,
                $"{source.GroundTruth.Count} true \u00b7 {predictions.Count} predicted");
            float countsWidth = caption.MeasureText(counts);
            canvas.DrawText(counts, cellRight, baseline, SKTextAlign.Right, caption, countInk);
            if (source.Caption is { Length: > 0 } name)
                canvas.DrawText(Fit(caption, name, cellRight - cellLeft - countsWidth - 12), cellLeft, baseline,
                    SKTextAlign.Left, caption, captionInk);
        }

        var rect = SKRectI.Create(cell.Left, cell.Top, cell.Width, cell.Height);
        canvas.Save();
        canvas.ClipRect(rect);
        using (var image = SkiaPixels.ToSkImage(source.Image))
            canvas.DrawImage(image, rect, SamplingFor(cell.Scale));

        foreach (var g in source.GroundTruth)
        {
            if (g.Theta is double theta)
            {
                using var outline = Outline(cell, new Boxes.RotatedRectangle(g.X, g.Y, g.W, g.H, theta).Corners());
                DrawGroundTruth(canvas, outline);
                continue;
            }
            var (l, t, r, b) = Snap(cell, g.X, g.Y, g.W, g.H);
            const int d = GroundTruthThickness;
            if (r > l && b > t) DrawGroundTruthBox(canvas, l - d, t - d, r + d, b + d);
        }
        // a turned box's corners, once: its outline and the extent its label is placed by
        var corners = predictions.Select(p => p.Detection).Select(d => d.Theta is double theta
            ? new Boxes.RotatedRectangle(d.X, d.Y, d.W, d.H, theta).Corners() : null).ToList();
        var boxes = predictions.Select((p, i) => corners[i] is { } turned ? Snap(cell, turned)
            : Snap(cell, p.Detection.X, p.Detection.Y, p.Detection.W, p.Detection.H)).ToList();
        for (int i = predictions.Count - 1; i >= 0; i--) // best drawn last, on top
        {
            if (corners[i] is not { } turned)
            {
                DrawRing(canvas, boxes[i], PredictionThickness, ColorOf(predictions[i]));
                continue;
            }
            using var outline = Outline(cell, turned);
            using var paint = new SKPaint
            {
                Color = ColorOf(predictions[i]), IsAntialias = true, Style = SKPaintStyle.Stroke,
                    StrokeWidth = PredictionThickness,
            };
            canvas.DrawPath(outline, paint);
        }

        // Labels over all boxes; placed best first (it gets the first choice of place), drawn best last (on top).
        using var font = EmbeddedFont.Create(LabelSize);
        var placed = new List<SKRectI>();
        for (int i = 0; i < predictions.Count; i++)
        {
            var (w, h) = TextLabel.Measure(font, predictions[i].Label);
            placed.Add(PlaceLabel(w, h, boxes[i], rect, placed));
        }
        for (int i = predictions.Count - 1; i >= 0; i--)
            TextLabel.Draw(canvas, font, predictions[i].Label, placed[i].Left, placed[i].Top, ColorOf(predictions[i]));
        canvas.Restore();
    }

    /// <summary>Above the box, at its left or right end; else inside it at its top; else below it; else inside it at
    /// its bottom: the first of these that lies within <paramref name="bounds"/> and overlaps no label placed before,
    /// else the first that lies within them.</summary>
    static SKRectI PlaceLabel(int w, int h, (int L, int T, int R, int B) box, SKRectI bounds, List<SKRectI> placed)
    {
        int Left(int x) => Math.Max(bounds.Left, Math.Min(x, bounds.Right - w));
        var candidates = new[]
            {
                (box.L, box.T - h), (box.R - w, box.T - h), (box.L, box.T), (box.R - w, box.T),
                (box.L, box.B), (box.R - w, box.B), (box.L, box.B - h), (box.R - w, box.B - h),
            }
            .Where(c => c.Item2 >= bounds.Top && c.Item2 + h <= bounds.Bottom)
            .Select(c => SKRectI.Create(Left(c.Item1), c.Item2, w, h)).ToList();
        if (candidates.Count == 0)
        {
            var (l, t) = TextLabel.Place(w, h, box.L, box.T, bounds);
            return SKRectI.Create(l, t, w, h);
        }
        return candidates.FirstOrDefault(c => !placed.Any(p => p.IntersectsWith(c)), candidates[0]);
    }

    /// <summary>A box in image coordinates as whole sheet pixels (left, top, right, bottom), right and bottom
    /// exclusive.</summary>
    static (int L, int T, int R, int B) Snap(ContactSheetCell cell, double x, double y, double w, double h)
    {
        var (x1, y1) = cell.ToSheet(x, y);
        var (x2, y2) = cell.ToSheet(x + w, y + h);
        // Clamped well outside the picture (it is clipped) so huge numbers cannot overflow.
        static int Round(float v) => (int)MathF.Round(Math.Clamp(v, -(1 << 20), 1 << 20));
        return (Round(Math.Min(x1, x2)), Round(Math.Min(y1, y2)), Round(Math.Max(x1, x2)), Round(Math.Max(y1, y2)));
    }

    /// <summary>The extent of corners x0, y0, ... in image coordinates, as <see cref="Snap(ContactSheetCell, double,
    /// double, double, double)"/>.</summary>
    static (int L, int T, int R, int B) Snap(ContactSheetCell cell, double[] corners)
    {
        double x1 = double.MaxValue, y1 = double.MaxValue, x2 = double.MinValue, y2 = double.MinValue;
        for (int i = 0; i < corners.Length; i += 2)
            (x1, y1, x2, y2) = (Math.Min(x1, corners[i]), Math.Min(y1, corners[i + 1]), Math.Max(x2, corners[i]),
                Math.Max(y2, corners[i + 1]));
        return Snap(cell, x1, y1, x2 - x1, y2 - y1);
    }

    /// <summary>A rotated box's outline in sheet pixels from its corners x0, y0, ... in image coordinates
    /// (<see cref="Boxes.RotatedRectangle.Corners"/>).</summary>
    static SKPath Outline(ContactSheetCell cell, double[] corners)
    {
        var points = Enumerable.Range(0, 4).Select(i => cell.ToSheet(corners[2 * i], corners[2 * i + 1]))
            .Select(p => new SKPoint(p.X, p.Y)).ToArray();
        using var builder = new SKPathBuilder();
        builder.AddPoly(points, close: true);
        return builder.Detach();
    }

    /// <summary>A rotated ground truth: green dashes over a dark line, as <see cref="DrawGroundTruthBox"/>.</summary>
    static void DrawGroundTruth(SKCanvas canvas, SKPath outline)
        => StrokeGroundTruth(true, paint => canvas.DrawPath(outline, paint));

    /// <summary>A solid outline <paramref name="thickness"/> pixels wide inside (l, t)-(r, b): exact pixels, no
    /// blending.</summary>
    static void DrawRing(SKCanvas canvas, (int L, int T, int R, int B) box, int thickness, SKColor color)
    {
        var (l, t, r, b) = box;
        if (r <= l || b <= t) return;
        int tx = Math.Min(thickness, r - l), ty = Math.Min(thickness, b - t);
        using var paint = new SKPaint { Color = color, IsAntialias = false, Style = SKPaintStyle.Fill };
        canvas.DrawRect(SKRect.Create(l, t, r - l, ty), paint);
        canvas.DrawRect(SKRect.Create(l, b - ty, r - l, ty), paint);
        canvas.DrawRect(SKRect.Create(l, t, tx, b - t), paint);
        canvas.DrawRect(SKRect.Create(r - tx, t, tx, b - t), paint);
    }

    /// <summary>Ground truth inside (l, t)-(r, b), <see cref="GroundTruthThickness"/> pixels wide: green dashes over a
    /// dark line, so it shows on light and dark backgrounds alike.</summary>
    static void DrawGroundTruthBox(SKCanvas canvas, int l, int t, int r, int b)
    {
        const float half = GroundTruthThickness / 2f;
        var path = SKRect.Create(l + half, t + half, r - l - GroundTruthThickness, b - t - GroundTruthThickness);
        if (path.Width <= 0 || path.Height <= 0) return;
        StrokeGroundTruth(false, paint => canvas.DrawRect(path, paint));
    }

    /// <summary>Draws the ground truth's outline twice: a dark line, then green dashes over it.</summary>
    static void StrokeGroundTruth(bool antialias, Action<SKPaint> draw)
    {
        using var halo = new SKPaint
        {
            Color = Halo, IsAntialias = antialias, Style = SKPaintStyle.Stroke, StrokeWidth = GroundTruthThickness,
        };
        draw(halo);
        using var dashes = SKPathEffect.CreateDash([7, 5], 0);
        using var green = new SKPaint
        {
            Color = SkiaPixels.ToSk(DetectionPictures.GroundTruthColor), IsAntialias = antialias,
            Style = SKPaintStyle.Stroke, StrokeWidth = GroundTruthThickness, PathEffect = dashes,
        };
        draw(green);
    }

    /// <summary>Whole-number enlargements: nearest neighbour (every image pixel an exact square); other
    /// enlargements: bicubic; reductions: linear between mipmap levels.</summary>
    static SKSamplingOptions SamplingFor(float scale) =>
        scale >= 1 && scale == MathF.Round(scale) ? new SKSamplingOptions(SKFilterMode.Nearest)
        : scale > 1 ? new SKSamplingOptions(SKCubicResampler.Mitchell)
        : new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear);

    /// <summary>The text, shortened with an ellipsis to fit <paramref name="width"/> pixels.</summary>
    static string Fit(SKFont font, string text, float width)
    {
        if (font.MeasureText(text) <= width) return text;
        for (int n = text.Length - 1; n > 0; n--)
        {
            string shorter = text[..n].TrimEnd() + "\u2026";
            if (font.MeasureText(shorter) <= width) return shorter;
        }
        return "";
    }
}
