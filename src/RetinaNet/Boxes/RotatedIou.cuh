// IoU of two convex quadrilaterals given as 4 corners (x0, y0, ..., x3, y3, either turning direction):
// quadrilateral a clipped by each edge of b (Sutherland-Hodgman), shoelace areas. rotated_iou is exact (double, the
// same steps as RotatedIou.Of in C#); rotated_iou_t<float> is the fast form for screening, its corners taken
// relative to a's first one so that float keeps the digits of the boxes' sizes rather than their positions.
template <typename T> __device__ inline T rq_signed_area(const T* x, const T* y, int n)
{
    T s = 0;
    for (int i = 0; i < n; i++) { int j = i + 1 == n ? 0 : i + 1; s += x[i] * y[j] - x[j] * y[i]; }
    return T(0.5) * s;
}

template <typename T> __device__ inline T rq_side(T ex, T ey, T fx, T fy, T px, T py)
{
    return (fx - ex) * (py - ey) - (fy - ey) * (px - ex);
}

template <typename T> __device__ T rotated_iou_t(const float* a, const float* b, float ox, float oy)
{
    T px[16], py[16], qx[16], qy[16], bx[4], by[4];
    T aminx = T(1e30), amaxx = T(-1e30), aminy = T(1e30), amaxy = T(-1e30);
    T bminx = T(1e30), bmaxx = T(-1e30), bminy = T(1e30), bmaxy = T(-1e30);
    for (int i = 0; i < 4; i++)
    {
        px[i] = T(a[2 * i]) - T(ox); py[i] = T(a[2 * i + 1]) - T(oy);
        bx[i] = T(b[2 * i]) - T(ox); by[i] = T(b[2 * i + 1]) - T(oy);
        aminx = min(aminx, px[i]); amaxx = max(amaxx, px[i]); aminy = min(aminy, py[i]); amaxy = max(amaxy, py[i]);
        bminx = min(bminx, bx[i]); bmaxx = max(bmaxx, bx[i]); bminy = min(bminy, by[i]); bmaxy = max(bmaxy, by[i]);
    }
    if (amaxx < bminx || bmaxx < aminx || amaxy < bminy || bmaxy < aminy) return 0;
    T area_a = fabs(rq_signed_area(px, py, 4)), signed_b = rq_signed_area(bx, by, 4), area_b = fabs(signed_b);
    if (area_a <= 0 || area_b <= 0) return 0;
    if (signed_b < 0) // turn b so that its inside lies left of every edge
        for (int i = 0; i < 2; i++) { T t = bx[i]; bx[i] = bx[3 - i]; bx[3 - i] = t; t = by[i]; by[i] = by[3 - i]; by[3 - i] = t; }
    int n = 4;
    for (int e = 0; e < 4 && n > 0; e++)
    {
        T ex = bx[e], ey = by[e], fx = bx[(e + 1) & 3], fy = by[(e + 1) & 3];
        int m = 0;
        T sp = rq_side(ex, ey, fx, fy, px[n - 1], py[n - 1]);
        for (int i = 0, p = n - 1; i < n && m < 15; p = i++)
        {
            T sc = rq_side(ex, ey, fx, fy, px[i], py[i]);
            if ((sc >= 0) != (sp >= 0))
            {
                T t = sp / (sp - sc);
                qx[m] = px[p] + t * (px[i] - px[p]); qy[m] = py[p] + t * (py[i] - py[p]); m++;
            }
            if (sc >= 0) { qx[m] = px[i]; qy[m] = py[i]; m++; }
            sp = sc;
        }
        for (int i = 0; i < m; i++) { px[i] = qx[i]; py[i] = qy[i]; }
        n = m;
    }
    if (n < 3) return 0;
    T inter = fabs(rq_signed_area(px, py, n));
    return inter / (area_a + area_b - inter);
}

__device__ inline double rotated_iou(const float* a, const float* b) { return rotated_iou_t<double>(a, b, 0.0f, 0.0f); }

// Whether the exact IoU exceeds the threshold, screened in float: only an IoU within 1e-3 of the threshold (far
// beyond float's error on corners taken relative to the first box) is computed again in double.
__device__ inline bool rotated_iou_above(const float* a, const float* b, double threshold)
{
    float fast = rotated_iou_t<float>(a, b, a[0], a[1]);
    if (fabsf(fast - (float)threshold) > 1e-3f) return fast > (float)threshold;
    return rotated_iou(a, b) > threshold;
}
