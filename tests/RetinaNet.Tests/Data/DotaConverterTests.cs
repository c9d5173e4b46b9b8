using RetinaNet.Boxes;
using RetinaNet.Cli;
using RetinaNet.Data;
using RetinaNet.Data.Coco;
using RetinaNet.Data.Converters;
using Xunit;

namespace RetinaNet.Tests.Data;

public class DotaConverterTests
{
    [Fact]
    public void RectangleCornersComeBackAsTheRectangle()
    {
        foreach (var r in new RotatedRectangle[] { new(10, 20, 40, 10, 0.3), new(5, 5, 8, 30, -0.7),
            new(0, 0, 12, 6, 0) })
        {
            var back = RotatedRectangle.MinimumAreaOf(r.Corners());
            foreach (var (e, a) in new[] { (r.X, back.X), (r.Y, back.Y), (r.W, back.W), (r.H, back.H),
                (r.Theta, back.Theta) })
                Assertions.Close(e, a, 1e-9, $"{r} came back as {back}");
        }
    }

    [Fact]
    public void AQuadrilateralBecomesItsSmallestRectangle()
    {
        // parallelogram (0,0) (4,0) (5,2) (1,2): along x the extent is 5 x 2 = 10; along its slanted side (1, 2)/√5
        // it is 9/√5 x 8/√5 = 14.4. So the rectangle is x 0..5, y 0..2, unturned.
        var r = RotatedRectangle.MinimumAreaOf([0, 0, 4, 0, 5, 2, 1, 2]);
        foreach (var (e, a) in new[] { (0.0, r.X), (0.0, r.Y), (5.0, r.W), (2.0, r.H), (0.0, Math.Abs(r.Theta)) })
            Assertions.Close(e, a, 1e-9, $"{r}");
        // a rectangle turned by more than π/4 is given with width and height swapped and theta back in [-π/4, π/4]
        var steep = RotatedRectangle.FromCentre(50, 50, 40, 10, 1.2);
        Assertions.Close(1.2 - Math.PI / 2, steep.Theta, 1e-12);
        Assert.Equal((10.0, 40.0), (steep.W, steep.H));
        Assertions.Close(50, steep.X + steep.W / 2, 1e-12);
    }

    [Fact]
    public void ConvertsDotaLabelsToRotatedBoxes()
    {
        var root = Paths.TempDir();
        TestImages.Write(root, "images/P0001.png", TestImages.Png(200, 100));
        TestImages.Write(root, "images/P0002.png", TestImages.Png(64, 64)); // no label file: a negative
        // a plane as an unturned rectangle (10,20)-(50,40), a ship turned: corners of (100, 30, 40, 10, 0.3)
        var ship = new RotatedRectangle(100, 30, 40, 10, 0.3).Corners();
        string shipLine = string.Join(' ',
            ship.Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture)));
        TestImages.WriteText(root, "labelTxt/P0001.txt",
            $"imagesource:GoogleEarth\ngsd:0.146\n10 20 50 20 50 40 10 40 plane 0\n{shipLine} ship 1\n");
        var output = Path.Combine(root, "dota.json");

        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CommandLine.Run(["convert", root, "--from", "dota", "--output", output], stdout, stderr);
        Assert.True(code == 0, stderr.ToString());
        Assert.Contains("2 images (1 without objects), 2 objects as rotated boxes", stdout.ToString());
        Assert.Contains("(1 marked difficult", stdout.ToString());

        var coco = CocoFile.Load(output);
        Assert.Equal([new CocoCategory(1, "plane"), new CocoCategory(2, "ship")], coco.Categories);
        var plane = coco.Annotations[0];
        Assert.Equal((1L, 1L), (plane.ImageId, plane.CategoryId));
        foreach (var (e, a) in new[] { (10.0, plane.X), (20.0, plane.Y), (40.0, plane.W), (20.0, plane.H),
            (0.0, Math.Abs(plane.Theta!.Value)), (800.0, plane.Area) })
            Assertions.Close(e, a, 1e-9, "plane");
        var s = coco.Annotations[1];
        foreach (var (e, a) in new[] { (100.0, s.X), (30.0, s.Y), (40.0, s.W), (10.0, s.H), (0.3, s.Theta!.Value) })
            Assertions.Close(e, a, 1e-9, "ship");
        var polygon = Assert.Single(s.Segmentation!.Polygons!);
        for (int i = 0; i < 8; i++) Assertions.Close(ship[i], polygon[i], 1e-9, $"ship corner value {i}");
    }

    [Fact]
    public void ABadLineNamesTheFileAndLine()
    {
        var root = Paths.TempDir();
        TestImages.Write(root, "images/P0001.png", TestImages.Png(20, 20));
        TestImages.WriteText(root, "labelTxt/P0001.txt", "1 2 3 4 5 6 7 plane\n");
        var e = Assert.Throws<BadInputException>(() => DotaConverter.Convert(root, root, "out.json"));
        Assert.Contains("P0001.txt", e.Message);
        Assert.Contains("line 1: expected x1 y1 x2 y2 x3 y3 x4 y4 category [difficult], found 8 values", e.Message);
    }
}
