// Exact IoU of two convex quadrilaterals given as 4 corners (x0, y0, ..., x3, y3, either turning direction), in
// double: quadrilateral a clipped by each edge of b (Sutherland-Hodgman), shoelace areas. The same steps as
// RotatedIou.Of in C#.
__device__ inline double rq_signed_area(const double* x, const double* y, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) { int j = i + 1 == n ? 0 : i + 1; s += x[i] * y[j] - x[j] * y[i]; }
    return 0.5 * s;
}

__device__ inline double rq_side(double ex, double ey, double fx, double fy, double px, double py)
{
    return (fx - ex) * (py - ey) - (fy - ey) * (px - ex);
}

__device__ double rotated_iou(const float* a, const float* b)
{
    double px[16], py[16], qx[16], qy[16], bx[4], by[4];
    double aminx = 1e300, amaxx = -1e300, aminy = 1e300, amaxy = -1e300;
    double bminx = 1e300, bmaxx = -1e300, bminy = 1e300, bmaxy = -1e300;
    for (int i = 0; i < 4; i++)
    {
        px[i] = a[2 * i]; py[i] = a[2 * i + 1]; bx[i] = b[2 * i]; by[i] = b[2 * i + 1];
        aminx = fmin(aminx, px[i]); amaxx = fmax(amaxx, px[i]); aminy = fmin(aminy, py[i]); amaxy = fmax(amaxy, py[i]);
        bminx = fmin(bminx, bx[i]); bmaxx = fmax(bmaxx, bx[i]); bminy = fmin(bminy, by[i]); bmaxy = fmax(bmaxy, by[i]);
    }
    if (amaxx < bminx || bmaxx < aminx || amaxy < bminy || bmaxy < aminy) return 0;
    double area_a = fabs(rq_signed_area(px, py, 4)), signed_b = rq_signed_area(bx, by, 4), area_b = fabs(signed_b);
    if (area_a <= 0 || area_b <= 0) return 0;
    if (signed_b < 0) // turn b so that its inside lies left of every edge
        for (int i = 0; i < 2; i++) { double t = bx[i]; bx[i] = bx[3 - i]; bx[3 - i] = t; t = by[i]; by[i] = by[3 - i]; by[3 - i] = t; }
    int n = 4;
    for (int e = 0; e < 4 && n > 0; e++)
    {
        double ex = bx[e], ey = by[e], fx = bx[(e + 1) & 3], fy = by[(e + 1) & 3];
        int m = 0;
        double sp = rq_side(ex, ey, fx, fy, px[n - 1], py[n - 1]);
        for (int i = 0, p = n - 1; i < n && m < 15; p = i++)
        {
            double sc = rq_side(ex, ey, fx, fy, px[i], py[i]);
            if ((sc >= 0) != (sp >= 0))
            {
                double t = sp / (sp - sc);
                qx[m] = px[p] + t * (px[i] - px[p]); qy[m] = py[p] + t * (py[i] - py[p]); m++;
            }
            if (sc >= 0) { qx[m] = px[i]; qy[m] = py[i]; m++; }
            sp = sc;
        }
        for (int i = 0; i < m; i++) { px[i] = qx[i]; py[i] = qy[i]; }
        n = m;
    }
    if (n < 3) return 0;
    double inter = fabs(rq_signed_area(px, py, n));
    return inter / (area_a + area_b - inter);
}
