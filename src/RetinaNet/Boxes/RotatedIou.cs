using RetinaNet.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Boxes;

/// <summary>Exact IoU of rotated boxes given by their 4 corners (<see cref="RotatedBoxes"/>' order, or any order
/// that walks the outline): the first quadrilateral clipped by each edge of the second (Sutherland-Hodgman), areas
/// by the shoelace formula, in double. The CUDA kernel (RotatedIou.cuh) takes the same steps. Hand-written: no
/// .NET library intersects polygons; the reference it is tested against is bench/tools/rotated_reference.py.
/// </summary>
public static class RotatedIou
{
    static readonly string Source = CudaSource.Load("RotatedIou.cuh") + CudaSource.Load("RotatedIou.cu");
    const int Threads = 256;

    /// <summary>IoU of two boxes of 8 corner values each; 0 when either has no area.</summary>
    public static double Of(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Span<double> px = stackalloc double[16], py = stackalloc double[16], qx = stackalloc double[16],
            qy = stackalloc double[16];
        Span<double> bx = stackalloc double[4], by = stackalloc double[4];
        double aMinX = double.MaxValue, aMaxX = double.MinValue, aMinY = double.MaxValue, aMaxY = double.MinValue;
        double bMinX = double.MaxValue, bMaxX = double.MinValue, bMinY = double.MaxValue, bMaxY = double.MinValue;
        for (int i = 0; i < 4; i++)
        {
            px[i] = a[2 * i]; py[i] = a[2 * i + 1]; bx[i] = b[2 * i]; by[i] = b[2 * i + 1];
            aMinX = Math.Min(aMinX, px[i]); aMaxX = Math.Max(aMaxX, px[i]);
            aMinY = Math.Min(aMinY, py[i]); aMaxY = Math.Max(aMaxY, py[i]);
            bMinX = Math.Min(bMinX, bx[i]); bMaxX = Math.Max(bMaxX, bx[i]);
            bMinY = Math.Min(bMinY, by[i]); bMaxY = Math.Max(bMaxY, by[i]);
        }
        if (aMaxX < bMinX || bMaxX < aMinX || aMaxY < bMinY || bMaxY < aMinY) return 0;
        double areaA = Math.Abs(SignedArea(px, py, 4)), signedB = SignedArea(bx, by, 4), areaB = Math.Abs(signedB);
        if (areaA <= 0 || areaB <= 0) return 0;
        if (signedB < 0) { bx.Reverse(); by.Reverse(); } // b's inside left of every edge
        int n = 4;
        for (int e = 0; e < 4 && n > 0; e++)
        {
            double ex = bx[e], ey = by[e], fx = bx[(e + 1) & 3], fy = by[(e + 1) & 3];
            int m = 0;
            double sp = Side(ex, ey, fx, fy, px[n - 1], py[n - 1]);
            for (int i = 0, p = n - 1; i < n && m < 15; p = i++)
            {
                double sc = Side(ex, ey, fx, fy, px[i], py[i]);
                if (sc >= 0 != sp >= 0)
                {
                    double t = sp / (sp - sc);
                    qx[m] = px[p] + t * (px[i] - px[p]); qy[m] = py[p] + t * (py[i] - py[p]); m++;
                }
                if (sc >= 0) { qx[m] = px[i]; qy[m] = py[i]; m++; }
                sp = sc;
            }
            qx[..m].CopyTo(px); qy[..m].CopyTo(py);
            n = m;
        }
        if (n < 3) return 0;
        double inter = Math.Abs(SignedArea(px, py, n));
        return inter / (areaA + areaB - inter);
    }

    /// <summary>IoU of every pair: corners a [N, 8] and b [M, 8] to [N, M] float32, on a's device (a CUDA kernel
    /// there, this class's loop on the CPU).</summary>
    public static Tensor Pairwise(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        var ac = a.to(ScalarType.Float32).contiguous();
        var bc = b.to(ScalarType.Float32).to(a.device).contiguous();
        long n = ac.shape[0], m = bc.shape[0];
        if (a.device_type == DeviceType.CUDA && CudaKernels.Available)
        {
            var result = empty(n, m, dtype: ScalarType.Float32, device: a.device);
            if (n * m > 0)
                CudaKernels.Get(Source, "rotated_iou_pairwise", a.device.index < 0 ? 0 : a.device.index)
                    .Launch((int)((n * m + Threads - 1) / Threads), Threads, 0, ac, bc, n, m, result);
            return result.MoveToOuterDisposeScope();
        }
        var av = ac.cpu().data<float>().ToArray();
        var bv = bc.cpu().data<float>().ToArray();
        var iou = new float[n * m];
        Parallel.For(0, (int)n, i =>
        {
            for (int j = 0; j < m; j++) iou[i * m + j] = (float)Of(av.AsSpan(i * 8, 8), bv.AsSpan(j * 8, 8));
        });
        return tensor(iou, [n, m]).to(a.device).MoveToOuterDisposeScope();
    }

    static double SignedArea(ReadOnlySpan<double> x, ReadOnlySpan<double> y, int n)
    {
        double s = 0;
        for (int i = 0; i < n; i++) { int j = i + 1 == n ? 0 : i + 1; s += x[i] * y[j] - x[j] * y[i]; }
        return 0.5 * s;
    }

    static double Side(double ex, double ey, double fx, double fy, double px, double py) =>
        (fx - ex) * (py - ey) - (fy - ey) * (px - ex);
}
