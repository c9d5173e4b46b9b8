using RetinaNet.Data.Coco;

namespace RetinaNet.Evaluation;

/// <summary>A binary mask as pycocotools' run-length encoding: alternating runs of 0s and 1s (first run 0s, possibly
/// empty) over the pixels in column-major order. Rasterisation, union, area and IoU follow pycocotools' maskApi.c
/// step by step, integer casts and rounding included, so segm evaluation equals COCOeval's; no .NET library does
/// COCO's RLE, hence our own.</summary>
public sealed class MaskRle
{
    public int Height { get; }
    public int Width { get; }
    /// <summary>The runs; they sum to Height * Width.</summary>
    public uint[] Counts { get; }

    public MaskRle(int height, int width, uint[] counts) => (Height, Width, Counts) = (height, width, counts);

    /// <summary>Pixels set: the sum of the odd runs.</summary>
    public long Area
    {
        get
        {
            long a = 0;
            for (int j = 1; j < Counts.Length; j += 2) a += Counts[j];
            return a;
        }
    }

    /// <summary>An annotation's region as COCO.annToRLE makes it: polygons rasterised at the image's size and
    /// merged, an RLE taken as written (at its own size).</summary>
    public static MaskRle Of(CocoSegmentation s, int height, int width)
    {
        if (s.Counts is not null) return new MaskRle(s.Height, s.Width, s.Counts);
        if (s.CompressedCounts is not null) return FromCompressed(s.CompressedCounts, s.Height, s.Width);
        if (ShapeProblem(s) is string problem) throw new ArgumentException(problem);
        var polygons = s.Polygons!;
        if (polygons.Count == 0) return new MaskRle(height, width, [(uint)(height * width)]);
        // frPyObjects looks at the first entry alone: 4 values mean every entry is a box [x, y, w, h]
        bool boxes = polygons[0].Length == 4;
        var masks = new MaskRle[polygons.Count];
        for (int i = 0; i < masks.Length; i++)
        {
            var p = polygons[i];
            masks[i] = boxes ? FromBox(p[0], p[1], p[2], p[3], height, width) : FromPolygon(p, height, width);
        }
        return Union(masks);
    }

    /// <summary>Why a region cannot be rasterised as pycocotools would (it raises there), or null.</summary>
    public static string? ShapeProblem(CocoSegmentation s)
    {
        if (s.IsRle || s.Polygons is not { Count: > 0 } polygons) return null;
        if (polygons[0].Length < 4) return "a polygon needs at least 3 points [x1, y1, x2, y2, x3, y3, ...]";
        if (polygons[0].Length == 4 && polygons.Any(p => p.Length != 4)) return "it mixes boxes (4 values) and "
            + "polygons";
        if (polygons[0].Length > 4 && polygons.Any(p => p.Length < 4)) return "a polygon needs at least 3 points [x1, "
            + "y1, x2, y2, x3, y3, ...]";
        return null;
    }

    /// <summary>rleFrBbox: the box's 4 corners as a polygon.</summary>
    public static MaskRle FromBox(double x, double y, double w, double h, int height, int width)
    {
        double xe = x + w, ye = y + h;
        return FromPolygon([x, y, x, ye, xe, ye, xe, y], height, width);
    }

    /// <summary>rleFrPoly: walks the polygon's edges on a grid 5 times finer than the pixels, keeps the points where
    /// an edge crosses a pixel column's centre, and turns those crossings into runs.</summary>
    public static MaskRle FromPolygon(ReadOnlySpan<double> xy, int height, int width)
    {
        const double Scale = 5;
        int k = xy.Length / 2;
        var x = new int[k + 1];
        var y = new int[k + 1];
        for (int j = 0; j < k; j++) { x[j] = (int)(Scale * xy[2 * j] + .5); y[j] = (int)(Scale * xy[2 * j + 1] + .5); }
        x[k] = x[0]; y[k] = y[0];
        long m = 0;
        for (int j = 0; j < k; j++) m += Math.Max(Math.Abs(x[j] - x[j + 1]), Math.Abs(y[j] - y[j + 1])) + 1;
        var u = new int[m];
        var v = new int[m];
        m = 0;
        for (int j = 0; j < k; j++)
        {
            int xs = x[j], xe = x[j + 1], ys = y[j], ye = y[j + 1];
            int dx = Math.Abs(xe - xs), dy = Math.Abs(ys - ye);
            bool flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
            if (flip) { (xs, xe) = (xe, xs); (ys, ye) = (ye, ys); }
            double s = dx >= dy ? (double)(ye - ys) / dx : (double)(xe - xs) / dy;
            if (dx >= dy)
                for (int d = 0; d <= dx; d++) { int t = flip ? dx - d : d; u[m] = t + xs; v[m] = (int)(ys + s * t + .5);
                    m++; }
            else
                for (int d = 0; d <= dy; d++) { int t = flip ? dy - d : d; v[m] = t + ys; u[m] = (int)(xs + s * t + .5);
                    m++; }
        }
        // the boundary points on pixel-column centres, back at pixel scale
        var starts = new List<uint>();
        for (long j = 1; j < m; j++)
        {
            if (u[j] == u[j - 1]) continue;
            double xd = u[j] < u[j - 1] ? u[j] : u[j] - 1;
            xd = (xd + .5) / Scale - .5;
            if (Math.Floor(xd) != xd || xd < 0 || xd > width - 1) continue;
            double yd = v[j] < v[j - 1] ? v[j] : v[j - 1];
            yd = (yd + .5) / Scale - .5;
            yd = yd < 0 ? 0 : yd > height ? height : yd;
            yd = Math.Ceiling(yd);
            starts.Add((uint)((int)xd * height + (int)yd));
        }
        starts.Add((uint)(height * width));
        starts.Sort();
        // differences between sorted positions are the runs; a zero run merges its neighbours
        var a = starts.ToArray();
        uint previous = 0;
        for (int j = 0; j < a.Length; j++) { uint t = a[j]; a[j] -= previous; previous = t; }
        var runs = new List<uint>(a.Length) { a[0] };
        for (int j = 1; j < a.Length;)
        {
            if (a[j] > 0) runs.Add(a[j++]);
            else { j++; if (j < a.Length) runs[^1] += a[j++]; }
        }
        return new MaskRle(height, width, [.. runs]);
    }

    /// <summary>rleMerge without intersect: the union of masks of one size (a size mismatch gives an empty
    /// 0x0 mask, as pycocotools does).</summary>
    public static MaskRle Union(IReadOnlyList<MaskRle> masks)
    {
        if (masks.Count == 1) return masks[0];
        int h = masks[0].Height, w = masks[0].Width;
        var current = masks[0].Counts;
        for (int i = 1; i < masks.Count; i++)
        {
            var b = masks[i];
            if (b.Height != h || b.Width != w) return new MaskRle(0, 0, []);
            var merged = new List<uint>(current.Length + b.Counts.Length);
            var ra = new RunReader(current);
            var rb = new RunReader(b.Counts);
            bool value = false;
            uint run = 0;
            while (true)
            {
                uint c = Math.Min(ra.Left, rb.Left);
                run += c;
                bool more = ra.Take(c) | rb.Take(c);
                bool next = ra.Value || rb.Value;
                if (next != value || !more) { merged.Add(run); run = 0; }
                value = next;
                if (!more) break;
            }
            current = [.. merged];
        }
        return new MaskRle(h, w, current);
    }

    /// <summary>rleIou for one pair: intersection over union of the pixels; with a crowd ground truth, over the
    /// detection's area. -1 when the sizes differ, 0 when nothing overlaps.</summary>
    public static double Iou(MaskRle dt, MaskRle gt, bool crowd)
    {
        if (dt.Counts.Length == 0 || gt.Counts.Length == 0) return 0;
        if (dt.Height != gt.Height || dt.Width != gt.Width) return -1;
        var ra = new RunReader(dt.Counts);
        var rb = new RunReader(gt.Counts);
        ulong inter = 0, union = 0;
        while (true)
        {
            uint c = Math.Min(ra.Left, rb.Left);
            if (ra.Value || rb.Value) { union += c; if (ra.Value && rb.Value) inter += c; }
            if (!(ra.Take(c) | rb.Take(c))) break;
        }
        if (inter == 0) return 0;
        double u = crowd ? dt.Area : union;
        return inter / u;
    }

    /// <summary>rleFrString: pycocotools' compressed counts (LEB128-like, 6 bits a character from '0', each count
    /// after the second stored as the difference to the one two before).</summary>
    public static MaskRle FromCompressed(string s, int height, int width)
    {
        var counts = new List<uint>();
        int p = 0;
        while (p < s.Length)
        {
            long x = 0;
            int k = 0;
            bool more = true;
            while (more)
            {
                if (p >= s.Length) throw new ArgumentException("RLE counts string ends inside a number");
                int c = s[p] - 48;
                x |= (long)(c & 0x1f) << 5 * k;
                more = (c & 0x20) != 0;
                p++; k++;
                if (!more && (c & 0x10) != 0) x |= -1L << 5 * k;
            }
            if (counts.Count > 2) x += counts[^2];
            counts.Add((uint)x);
        }
        return new MaskRle(height, width, [.. counts]);
    }

    /// <summary>Walks runs as maskApi.c's loops do: the value under the cursor and what is left of its run, one run
    /// loaded per step (a zero-length run in the middle takes a step of its own).</summary>
    struct RunReader(uint[] counts)
    {
        int next = 1;
        public uint Left = counts[0];
        public bool Value;

        /// <summary>Consumes c pixels; true while pixels remain.</summary>
        public bool Take(uint c)
        {
            Left -= c;
            if (Left == 0 && next < counts.Length) { Left = counts[next++]; Value = !Value; }
            return Left > 0;
        }
    }
}
