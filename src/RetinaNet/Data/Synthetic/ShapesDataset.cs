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
    public static (CocoFile Annotations, List<(string FileName, RgbImage Image)> Images) Generate(int count, int size, int seed, string annotationsPath = "annotations.json")
    {
        var random = new Random(seed);
        var images = new List<(string, RgbImage)>();
        var infos = new List<CocoImageInfo>();
        var annotations = new List<CocoAnnotation>();
        for (int i = 0; i < count; i++)
        {
            var pixels = Background(size, random);
            int shapes = random.Next(1, 5);
            var placed = new List<(int X, int Y, int S)>();
            for (int k = 0; k < shapes; k++)
            {
                int s = random.Next(size / 5, size / 2); // 26-64 px at 128: the sizes of the P3/P4 anchors
                int x = random.Next(0, size - s), y = random.Next(0, size - s);
                if (placed.Any(p => x < p.X + p.S && p.X < x + s && y < p.Y + p.S && p.Y < y + s)) continue; // no overlaps: boxes stay exact
                placed.Add((x, y, s));
                int cls = random.Next(ClassNames.Length);
                var colour = Colour(cls, random);
                Draw(pixels, size, cls, x, y, s, colour);
                annotations.Add(new CocoAnnotation(annotations.Count + 1, i + 1, cls + 1, x, y, s, s, s * s, false));
            }
            var name = $"{i:D5}.png";
            infos.Add(new CocoImageInfo(i + 1, name, size, size));
            images.Add((name, new RgbImage(size, size, pixels)));
        }
        var categories = ClassNames.Select((n, c) => new CocoCategory(c + 1, n, "shape")).ToList();
        return (new CocoFile(annotationsPath, infos, annotations, categories), images);
    }

    static byte[] Background(int size, Random random)
    {
        var p = new byte[size * size * 3];
        int baseGrey = random.Next(60, 190), stripe = random.Next(8, 32);
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                int v = baseGrey + ((x + y) / stripe % 2 == 0 ? 15 : -15) + random.Next(-20, 21);
                for (int c = 0; c < 3; c++) p[3 * (y * size + x) + c] = (byte)Math.Clamp(v + random.Next(-6, 7), 0, 255);
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
