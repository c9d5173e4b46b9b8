using RetinaNet.Data;
using RetinaNet.Data.Coco;
using RetinaNet.Data.Imaging;
using RetinaNet.Data.Synthetic;
using RetinaNet.Evaluation;
using Xunit;
using static RetinaNet.Tests.Data.Imaging.TestImages;

namespace RetinaNet.Tests.Data.Imaging;

public class ContactSheetTests
{
    static readonly (byte R, byte G, byte B) Grey = (128, 128, 128);
    static readonly CategoryMap Things = new([new CocoCategory(7, "thing"), new CocoCategory(9, "another thing")]);

    static RgbImage Plain(int w = 128, int h = 128) =>
        new(w, h, Enumerable.Repeat((byte)128, w * h * 3).ToArray());

    static CocoAnnotation Truth(double x, double y, double w, double h, long category = 7) =>
        new(1, 1, category, x, y, w, h, w * h, false);

    // Float literals: they convert to CocoDetection's numbers whether those are float or double.
    static CocoDetection Detection(float x, float y, float w, float h, float score = 0.9f, long category = 7) =>
        new(1, category, x, y, w, h, score);

    static IEnumerable<(int X, int Y)> Area(int left, int top, int right, int bottom) =>
        Enumerable.Range(top, bottom - top).SelectMany(y => Enumerable.Range(left, right - left).Select(x => (x, y)));

    static IEnumerable<(int X, int Y)> Area(ContactSheetCell c) =>
        Area(c.Left, c.Top, c.Left + c.Width, c.Top + c.Height);

    static bool IsInk((byte R, byte G, byte B) p) => p.R + p.G + p.B < 3 * 70;

    [Fact]
    public void SheetSizeFollowsTheGridOfUpToTwelveImages()
    {
        var (annotations, shapes) = ShapesDataset.Generate(14, 128, seed: 4);
        var all = ContactSheet.ImagesOf(annotations, shapes.Select(s => s.Image).ToList(), []);
        var categories = new CategoryMap(annotations.Categories);
        int cell = new ContactSheetOptions().CellSize;
        Assert.Equal(384, cell);
        int rowStep = ContactSheet.CaptionHeight + cell + ContactSheet.Gutter;

        var sizes = new Dictionary<int, (int W, int H)>();
        foreach (int n in new[] { 1, 2, 3, 4, 6, 7, 12, 14 })
        {
            var images = all.Take(n).ToList();
            var sheet = ContactSheet.Render(images, categories);
            var layout = ContactSheet.Layout(images, categories);
            Assert.Equal((layout.Width, layout.Height), (sheet.Width, sheet.Height));
            int columns = Math.Min(n, 3);
            Assert.Equal(2 * ContactSheet.Margin + columns * cell + (columns - 1) * ContactSheet.Gutter, sheet.Width);
            Assert.Equal(Math.Min(n, 12), layout.Cells.Count);
            foreach (var c in layout.Cells)
            {
                Assert.Equal((3f, cell, cell), (c.Scale, c.Width, c.Height)); // 128-pixel images shown 3x
                Assert.InRange(c.Left, ContactSheet.Margin, sheet.Width - ContactSheet.Margin - cell);
                Assert.InRange(c.Top, 0, sheet.Height - ContactSheet.Margin - cell);
            }
            // Cells side by side in rows, none overlapping.
            for (int i = 1; i < layout.Cells.Count; i++)
            {
                var (previous, current) = (layout.Cells[i - 1], layout.Cells[i]);
                if (i % 3 != 0) Assert.Equal(previous.Left + cell + ContactSheet.Gutter, current.Left);
                else Assert.Equal(layout.Cells[i - 3].Top + rowStep, current.Top);
            }
            // The last row, then the bottom margin of the sheet's background.
            Assert.Equal(layout.Cells.Max(c => c.Top + c.Height) + ContactSheet.Margin, sheet.Height);
            Assert.Equal(ContactSheet.Background, At(sheet, sheet.Width / 2, sheet.Height - 1));
            sizes[n] = (sheet.Width, sheet.Height);
        }
        Assert.Equal(sizes[3].H + rowStep, sizes[4].H);
        Assert.Equal(sizes[3].H + rowStep, sizes[6].H);
        Assert.Equal(sizes[3].H + 2 * rowStep, sizes[7].H);
        Assert.Equal(sizes[3].H + 3 * rowStep, sizes[12].H);
        Assert.Equal(sizes[12], sizes[14]); // at most 12 images
        Assert.Equal(sizes[3].W, sizes[14].W);
    }

    [Fact]
    public void OtherSizesAndShapesFitTheCellKeepingTheirAspect()
    {
        var images = new List<ContactSheetImage> { new(Plain(256, 128), [], []), new(Plain(100, 200), [], []) };
        var layout = ContactSheet.Layout(images, Things, new ContactSheetOptions { CellSize = 300 });
        Assert.Equal((300, 150, 300f / 256), (layout.Cells[0].Width, layout.Cells[0].Height, layout.Cells[0].Scale));
        Assert.Equal((150, 300), (layout.Cells[1].Width, layout.Cells[1].Height));
        Assert.Equal(1.5f, layout.Cells[1].Scale);
        Assert.Equal(ContactSheet.Margin + 300 + ContactSheet.Gutter + 75, layout.Cells[1].Left); // centred
        var sheet = ContactSheet.Render(images, Things, new ContactSheetOptions { CellSize = 300 });
        Assert.Equal(Grey, At(sheet, layout.Cells[1].Left + 1, layout.Cells[1].Top + 299));
        Assert.Equal(ContactSheet.Background, At(sheet, layout.Cells[1].Left - 2, layout.Cells[1].Top + 150));
    }

    [Fact]
    public void EachDetectionGetsItsLabelTextAndAnImageWithoutDetectionsGetsNone()
    {
        var images = new List<ContactSheetImage>
        {
            new(Plain(), [Detection(40, 60, 40, 30)], []),
            new(Plain(), [], []),
            new(Plain(), [Detection(40, 60, 40, 30, score: 0.2f)], []), // under the default minimum score (0.3)
        };
        var sheet = ContactSheet.Render(images, Things);
        var cells = ContactSheet.Layout(images, Things).Cells;
        var colour = DetectionPictures.ColorOf(0);

        // The label sits on the box's top edge, from its left end: the label colour with dark text on it.
        var (left, top) = (cells[0].Left + 3 * 40, cells[0].Top + 3 * 60);
        var label = Area(left, top - 14, left + 70, top).Select(p => At(sheet, p.X, p.Y)).ToList();
        Assert.True(label.Count(p => p == colour) > label.Count / 3, "label background");
        Assert.True(label.Count(IsInk) > 40, $"label text: {label.Count(IsInk)} dark pixels");
        // Nothing but the box and label changed the picture: no dark pixels elsewhere.
        Assert.DoesNotContain(Area(cells[0].Left, cells[0].Top, cells[0].Left + cells[0].Width, top - 24),
            p => IsInk(At(sheet, p.X, p.Y)));

        // The images with nothing to show are untouched: plain grey.
        foreach (var c in cells.Skip(1))
            Assert.All(Area(c), p => Assert.Equal(Grey, At(sheet, p.X, p.Y)));
    }

    [Fact]
    public void LabelsSayTheClassAndScore()
    {
        // The same box, different texts: the label's pixels differ, and a longer text makes a wider label.
        RgbImage SheetWith(long category, float score) =>
            ContactSheet.Render([new(Plain(), [Detection(10, 60, 40, 30, score, category)], [])], Things);
        int LabelWidth(RgbImage sheet, long category)
        {
            var cell = ContactSheet.Layout([new(Plain(), [], [])], Things).Cells[0];
            var colour = DetectionPictures.ColorOf(category == 7 ? 0 : 1);
            int y = cell.Top + 3 * 60 - 2, x = cell.Left + 3 * 10;
            while (At(sheet, x, y) == colour || IsInk(At(sheet, x, y)) || At(sheet, x + 1, y) == colour) x++;
            return x - (cell.Left + 3 * 10);
        }
        var (thing90, thing45, other90) = (SheetWith(7, 0.9f), SheetWith(7, 0.45f), SheetWith(9, 0.9f));
        Assert.NotEqual(thing90.Pixels, thing45.Pixels);
        Assert.InRange(LabelWidth(thing90, 7), 55, 90);                            // "thing 0.90"
        Assert.InRange(LabelWidth(other90, 9) - LabelWidth(thing90, 7), 40, 80); // "another thing 0.90"
    }

    [Fact]
    public void GroundTruthAndPredictionsHaveDistinctColoursAtTheirEdges()
    {
        // A prediction exactly on its ground truth: the ground truth just outside the edge, the prediction inside.
        var images = new List<ContactSheetImage>
        {
            new(Plain(), [Detection(30, 40, 50, 60)], [Truth(30, 40, 50, 60)]),
        };
        var sheet = ContactSheet.Render(images, Things);
        var cell = ContactSheet.Layout(images, Things).Cells[0];
        var predicted = DetectionPictures.ColorOf(0);
        var truth = DetectionPictures.GroundTruthColor;
        Assert.NotEqual(truth, predicted);
        int left = cell.Left + 3 * 30, top = cell.Top + 3 * 40;
        int right = cell.Left + 3 * 80, bottom = cell.Top + 3 * 100;

        foreach (int x in new[] { left, left + 1, left + 2, right - 1 })
            Assert.All(Enumerable.Range(top + 1, bottom - top - 2), y => Assert.Equal(predicted, At(sheet, x, y)));
        Assert.Equal(Grey, At(sheet, left + 3, (top + bottom) / 2));
        foreach (int x in new[] { left - 1, left - 2, right, right + 1 })
        {
            var edge = Enumerable.Range(top, bottom - top).Select(y => At(sheet, x, y)).ToList();
            Assert.True(edge.Count(p => p == truth) > edge.Count / 3, $"dashed green at x = {x}");
            Assert.All(edge, p => Assert.True(p == truth || IsInk(p), $"{p}: green dashes on a dark line"));
        }
        Assert.Equal(Grey, At(sheet, left - 3, (top + bottom) / 2));
        foreach (int y in new[] { bottom, bottom + 1 })
        {
            var edge = Enumerable.Range(left, right - left).Select(x => At(sheet, x, y)).ToList();
            Assert.True(edge.Count(p => p == truth) > edge.Count / 3, $"dashed green at y = {y}");
            Assert.DoesNotContain(predicted, edge);
        }
        Assert.Equal(predicted, At(sheet, (left + right) / 2, bottom - 1));
    }

    [Fact]
    public void DetectionNumbersOutsideTheImageAreClippedToItsCell()
    {
        var images = new List<ContactSheetImage>
        {
            new(Plain(), [Detection(-50, -50, 1e9f, 1e9f), Detection(float.NaN, 0, 5, 5)],
                [Truth(-10, 100, 500, 500)]),
            new(Plain(), [], []),
        };
        var sheet = ContactSheet.Render(images, Things);
        var cells = ContactSheet.Layout(images, Things).Cells;
        Assert.All(Area(cells[1]), p => Assert.Equal(Grey, At(sheet, p.X, p.Y)));
        // Between the cells: the sheet's background.
        Assert.Equal(ContactSheet.Background, At(sheet, cells[0].Left + cells[0].Width + 2, cells[0].Top + 200));
    }

    [Fact]
    public void BadOptionsAndNoImagesAreRefused()
    {
        var one = new List<ContactSheetImage> { new(Plain(), [], []) };
        Assert.Throws<ArgumentException>(() => ContactSheet.Render([], Things));
        Assert.Throws<ArgumentOutOfRangeException>(() => ContactSheet.Render(one, Things, new() { Columns = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => ContactSheet.Render(one, Things, new() { CellSize = 0 }));
        var (annotations, shapes) = ShapesDataset.Generate(2, 128, seed: 1);
        Assert.Throws<ArgumentException>(() => ContactSheet.Render(annotations, [shapes[0].Image], []));
    }
}
