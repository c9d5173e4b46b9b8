using RetinaNet.Data.Coco;

namespace RetinaNet.Data.Synthetic;

/// <summary>A small detection dataset drawn from nothing: squares, discs and triangles (three classes, each with its
/// own colour family) on noisy textured backgrounds, with exact boxes. The demo trains on it; tests use it where a
/// model must show it learned something. Deterministic under the seed.</summary>
public static class ShapesDataset
{
    public static readonly string[] ClassNames = ["square", "disc", "triangle"];

    /// <summary>Makes <paramref name="count"/> images of <paramref name="size"/>² pixels with 1–4 shapes
    /// each.</summary>
    public static (CocoFile Annotations, List<(string FileName, RgbImage Image)> Images) Generate(int count, int size,
        int seed, string annotationsPath = "annotations.json") =>
        Generate(count, size, seed, annotationsPath, ClassNames, (pixels, random, imageId, annotations) =>
        {
            int shapes = random.Next(1, 5);
            var placed = new List<(int X, int Y, int S)>();
            for (int k = 0; k < shapes; k++)
            {
                int s = random.Next(size / 5, size / 2); // 26-64 px at 128: the sizes of the P3/P4 anchors
                int x = random.Next(0, size - s), y = random.Next(0, size - s);
                if (placed.Any(p => x < p.X + p.S && p.X < x + s && y < p.Y + p.S && p.Y < y + s))
                    continue; // no overlaps: boxes stay exact
                placed.Add((x, y, s));
                int cls = random.Next(ClassNames.Length);
                var colour = Colour(cls, random);
                Draw(pixels, size, cls, x, y, s, colour);
                annotations.Add(new CocoAnnotation(annotations.Count + 1, imageId, cls + 1, x, y, s, s, s * s, false));
            }
        });

    /// <summary>The demo's data written to <paramref name="dir"/>: <paramref name="count"/> training images (seed 1,
    /// <c>annotations.json</c>) and a quarter as many held out (seed 2, files <c>val_*</c>, <c>val.json</c>), all in
    /// <c>images/</c>; axis-aligned shapes or, <paramref name="rotated"/>, the rotated ones.</summary>
    public static (CocoFile Train, CocoFile Val, string Images, List<RgbImage> ValImages) WriteDemo(string dir,
        int count, int size, bool rotated)
    {
        string images = Path.Combine(dir, "images");
        Directory.CreateDirectory(images);
        var generate = rotated ? GenerateRotated
            : (Func<int, int, int, string, (CocoFile, List<(string FileName, RgbImage Image)>)>)Generate;
        var (train, trainImages) = generate(count, size, 1, Path.Combine(dir, "annotations.json"));
        var (val, valImages) = generate(Math.Max(4, count / 4), size, 2, Path.Combine(dir, "val.json"));
        val = new CocoFile(val.Path, val.Images.Select(i => i with { FileName = "val_" + i.FileName }).ToList(),
            val.Annotations, val.Categories);
        foreach (var (name, image) in trainImages) Imaging.ImageEncoder.SavePng(image, Path.Combine(images, name));
        foreach (var (name, image) in valImages)
            Imaging.ImageEncoder.SavePng(image, Path.Combine(images, "val_" + name));
        train.Save(train.Path);
        val.Save(val.Path);
        return (train, val, images, valImages.Select(v => v.Image).ToList());
    }

    /// <summary>Draws an image's shapes on its background and adds their annotations.</summary>
    delegate void ShapePainter(byte[] pixels, Random random, long imageId, List<CocoAnnotation> annotations);

    /// <summary><paramref name="count"/> images of <paramref name="size"/>² pixels: a background each, then its
    /// shapes by <paramref name="paint"/>, all from one generator seeded with <paramref name="seed"/>.</summary>
    static (CocoFile Annotations, List<(string FileName, RgbImage Image)> Images) Generate(int count, int size,
        int seed, string annotationsPath, string[] classNames, ShapePainter paint)
    {
        var random = new Random(seed);
        var images = new List<(string, RgbImage)>();
        var infos = new List<CocoImageInfo>();
        var annotations = new List<CocoAnnotation>();
        for (int i = 0; i < count; i++)
        {
            var pixels = Background(size, random);
            paint(pixels, random, i + 1, annotations);
            var name = $"{i:D5}.png";
            infos.Add(new CocoImageInfo(i + 1, name, size, size));
            images.Add((name, new RgbImage(size, size, pixels)));
        }
        var categories = classNames.Select((n, c) => new CocoCategory(c + 1, n, "shape")).ToList();
        return (new CocoFile(annotationsPath, infos, annotations, categories), images);
    }

    /// <summary>The rotated variant (ODTK's <c>--rotated-bbox</c>): bars and plates (rectangles of aspect 2.5–3.5 and
    /// 1.2–1.6: thinner bars match too few of ODTK's default anchors, ratios 0.5–2, to be learned) at angles all
    /// round, annotated as rotated boxes (bbox [x, y, w, h, theta], theta in [−π/4, π/4), and the 4 corners as the
    /// segmentation), <paramref name="size"/>² pixels with 1–4 shapes each.</summary>
    public static (CocoFile Annotations, List<(string FileName, RgbImage Image)> Images) GenerateRotated(int count,
        int size, int seed, string annotationsPath = "annotations.json") =>
        Generate(count, size, seed, annotationsPath, RotatedClassNames, (pixels, random, imageId, annotations) =>
        {
            int shapes = random.Next(1, 5);
            var placed = new List<(double X, double Y, double R)>();
            for (int k = 0; k < shapes; k++)
            {
                int cls = random.Next(RotatedClassNames.Length);
                double aspect = cls == 0 ? 2.5 + random.NextDouble() : 1.2 + 0.4 * random.NextDouble();
                double length = size * (0.25 + 0.25 * random.NextDouble()), thickness = length / aspect;
                bool upright = random.Next(2) == 1; // the long side across or along: angles all round
                double w = upright ? thickness : length, h = upright ? length : thickness;
                double theta = Math.PI / 2 * (random.NextDouble() - 0.5), radius = Math.Sqrt(w * w + h * h) / 2;
                double cx = radius + random.NextDouble() * (size - 2 * radius),
                    cy = radius + random.NextDouble() * (size - 2 * radius);
                if (placed.Any(p => Math.Pow(p.X - cx, 2) + Math.Pow(p.Y - cy, 2) < Math.Pow(p.R + radius, 2)))
                    continue; // apart
                placed.Add((cx, cy, radius));
                var box = new Boxes.RotatedRectangle(cx - w / 2, cy - h / 2, w, h, theta);
                DrawRotated(pixels, size, box, Colour(cls, random));
                annotations.Add(new CocoAnnotation(annotations.Count + 1, imageId, cls + 1, box.X, box.Y, w, h, w * h,
                    false, theta, CocoSegmentation.OfPolygons(box.Corners())));
            }
        });

    public static readonly string[] RotatedClassNames = ["bar", "plate"];

    /// <summary>Fills the pixels whose centres lie in the rotated box (turned back into the box's own frame, the
    /// inverse of <see cref="Boxes.RotatedRectangle.Corners"/>).</summary>
    static void DrawRotated(byte[] p, int size, Boxes.RotatedRectangle box, (byte R, byte G, byte B) c)
    {
        double cx = box.X + box.W / 2, cy = box.Y + box.H / 2, cos = Math.Cos(box.Theta), sin = Math.Sin(box.Theta);
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                double px = x + 0.5 - cx, py = y + 0.5 - cy;
                double u = cos * px - sin * py, v = sin * px + cos * py;
                if (Math.Abs(u) > box.W / 2 || Math.Abs(v) > box.H / 2) continue;
                int o = 3 * (y * size + x);
                (p[o], p[o + 1], p[o + 2]) = (c.R, c.G, c.B);
            }
    }

    static byte[] Background(int size, Random random)
    {
        var p = new byte[size * size * 3];
        int baseGrey = random.Next(60, 190), stripe = random.Next(8, 32);
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                int v = baseGrey + ((x + y) / stripe % 2 == 0 ? 15 : -15) + random.Next(-20, 21);
                for (int c = 0; c < 3; c++)
                    p[3 * (y * size + x) + c] = (byte)Math.Clamp(v + random.Next(-6, 7), 0, 255);
            }
        return p;
    }

    static (byte R, byte G, byte B) Colour(int cls, Random random)
    {
        int j() => random.Next(-30, 31);
        return cls switch
        {
            0 => ((byte)(220 + j() / 3), (byte)(60 + j()), (byte)(60 + j())),
            1 => ((byte)(60 + j()), (byte)(200 + j() / 2), (byte)(70 + j())),
            _ => ((byte)(70 + j()), (byte)(90 + j()), (byte)(220 + j() / 3)),
        };
    }

    static void Draw(byte[] p, int size, int cls, int x0, int y0, int s, (byte R, byte G, byte B) c)
    {
        for (int y = y0; y < y0 + s; y++)
            for (int x = x0; x < x0 + s; x++)
            {
                double u = (x - x0 + 0.5) / s, v = (y - y0 + 0.5) / s;
                bool inside = cls switch
                {
                    0 => true,
                    1 => (u - 0.5) * (u - 0.5) + (v - 0.5) * (v - 0.5) <= 0.25,
                    _ => Math.Abs(u - 0.5) <= v / 2, // apex at the top centre, base along the bottom
                };
                if (!inside) continue;
                int o = 3 * (y * size + x);
                (p[o], p[o + 1], p[o + 2]) = (c.R, c.G, c.B);
            }
    }
}
