namespace RetinaNet.Boxes;

/// <summary>A rotated box in ODTK's form on the host: the axis-aligned box X, Y, W, H turned by Theta radians
/// anticlockwise on screen (y down) about its centre, Theta kept in [-π/4, π/4]
/// (<see cref="RotatedBoxes"/>).</summary>
public readonly record struct RotatedRectangle(double X, double Y, double W, double H, double Theta)
{
    /// <summary>The 4 corners x0, y0, ..., x3, y3, starting from the box's own top-left and going round through its
    /// top-right.</summary>
    public double[] Corners()
    {
        double cx = X + W / 2, cy = Y + H / 2, c = Math.Cos(Theta), s = Math.Sin(Theta);
        var corners = new double[8];
        ReadOnlySpan<(double Dx, double Dy)> offsets = [(-W / 2, -H / 2), (W / 2, -H / 2), (W / 2, H / 2),
            (-W / 2, H / 2)];
        for (int i = 0; i < 4; i++)
        {
            var (dx, dy) = offsets[i];
            corners[2 * i] = cx + c * dx + s * dy;
            corners[2 * i + 1] = cy - s * dx + c * dy;
        }
        return corners;
    }

    /// <summary>The same rectangle with its angle in [−π/4, π/4): a half turn changes nothing, a quarter turn swaps
    /// width and height about the same centre.</summary>
    public RotatedRectangle Normalized()
    {
        double theta = Theta - Math.PI * Math.Floor(Theta / Math.PI + 0.5); // [−π/2, π/2)
        double cx = X + W / 2, cy = Y + H / 2;
        if (theta < -Math.PI / 4) return new(cx - H / 2, cy - W / 2, H, W, theta + Math.PI / 2);
        if (theta >= Math.PI / 4) return new(cx - H / 2, cy - W / 2, H, W, theta - Math.PI / 2);
        return new(cx - W / 2, cy - H / 2, W, H, theta);
    }

    /// <summary>The smallest-area rectangle holding the points x0, y0, x1, y1, ... (a rectangle given by its corners
    /// comes back as itself): the best of the convex hull's edge directions (rotating calipers), in ODTK's form.
    /// </summary>
    public static RotatedRectangle MinimumAreaOf(ReadOnlySpan<double> xy)
    {
        var hull = ConvexHull(xy);
        if (hull.Count == 1) return new(hull[0].X, hull[0].Y, 0, 0, 0);
        double bestArea = double.MaxValue;
        RotatedRectangle best = default;
        for (int i = 0; i < hull.Count; i++)
        {
            var (ax, ay) = hull[i];
            var (bx, by) = hull[(i + 1) % hull.Count];
            double length = Math.Sqrt((bx - ax) * (bx - ax) + (by - ay) * (by - ay));
            if (length == 0) continue;
            double ux = (bx - ax) / length, uy = (by - ay) / length; // along the edge; (-uy, ux) across it
            double minU = double.MaxValue, maxU = double.MinValue, minV = double.MaxValue, maxV = double.MinValue;
            foreach (var (px, py) in hull)
            {
                double u = px * ux + py * uy, v = -px * uy + py * ux;
                minU = Math.Min(minU, u); maxU = Math.Max(maxU, u); minV = Math.Min(minV, v); maxV = Math.Max(maxV, v);
            }
            double area = (maxU - minU) * (maxV - minV);
            if (area >= bestArea) continue;
            bestArea = area;
            double cu = (minU + maxU) / 2, cv = (minV + maxV) / 2;
            double cx = cu * ux - cv * uy, cy = cu * uy + cv * ux;
            best = FromCentre(cx, cy, maxU - minU, maxV - minV, Math.Atan2(-uy, ux));
        }
        return best;
    }

    /// <summary>A rectangle of the given centre whose side of length <paramref name="along"/> points, on screen, at
    /// <paramref name="screenTurn"/> radians anticlockwise from the x axis, in ODTK's form: a quarter turn more or
    /// less swaps width and height, so Theta lands in [-π/4, π/4].</summary>
    public static RotatedRectangle FromCentre(double cx, double cy, double along, double across, double screenTurn)
    {
        double theta = Math.IEEERemainder(screenTurn, Math.PI); // a half turn is the same rectangle: [-π/2, π/2]
        double w = along, h = across;
        if (theta > Math.PI / 4) { theta -= Math.PI / 2; (w, h) = (h, w); }
        else if (theta < -Math.PI / 4) { theta += Math.PI / 2; (w, h) = (h, w); }
        return new(cx - w / 2, cy - h / 2, w, h, theta);
    }

    /// <summary>Andrew's monotone chain; collinear points dropped.</summary>
    static List<(double X, double Y)> ConvexHull(ReadOnlySpan<double> xy)
    {
        var points = new List<(double X, double Y)>(xy.Length / 2);
        for (int i = 0; i + 1 < xy.Length; i += 2) points.Add((xy[i], xy[i + 1]));
        points = [.. points.Distinct().OrderBy(p => p.X).ThenBy(p => p.Y)];
        if (points.Count < 3) return points;
        static double Cross((double X, double Y) o, (double X, double Y) a, (double X, double Y) b) =>
            (a.X - o.X) * (b.Y - o.Y) - (a.Y - o.Y) * (b.X - o.X);
        var hull = new List<(double X, double Y)>();
        foreach (var pass in new[] { points, Enumerable.Reverse(points).ToList() })
        {
            int start = hull.Count;
            foreach (var p in pass)
            {
                while (hull.Count - start >= 2 && Cross(hull[^2], hull[^1], p) <= 0) hull.RemoveAt(hull.Count - 1);
                hull.Add(p);
            }
            hull.RemoveAt(hull.Count - 1);
        }
        return hull;
    }
}
