using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Boxes;

/// <summary>ODTK's box coding: deltas (dx, dy, dw, dh) of a box relative to an anchor, centres and sizes with
/// the inclusive-pixel convention (w = x2 - x1 + 1). Works on any leading shape [..., 4].</summary>
public static class BoxCoder
{
    /// <summary>exp() input cap: a box at most 1000/16 times its anchor (torchvision's bound), so half-precision
    /// heads cannot overflow to inf.</summary>
    public static readonly double MaxLogScale = Math.Log(1000.0 / 16);

    public static Tensor Encode(Tensor boxes, Tensor anchors)
    {
        using var scope = NewDisposeScope();
        var (actr, awh) = CentreSize(anchors);
        var (bctr, bwh) = CentreSize(boxes);
        return cat([(bctr - actr) / awh, (bwh / awh).log()], -1).MoveToOuterDisposeScope();
    }

    /// <summary>Inverse of <see cref="Encode"/>; boxes are clamped to [0, limit - 1] per axis when
    /// <paramref name="limit"/> (x, y extents, i.e. the padded input's width and height) is given.</summary>
    public static Tensor Decode(Tensor deltas, Tensor anchors, (double W, double H)? limit = null)
    {
        using var scope = NewDisposeScope();
        var (actr, awh) = CentreSize(anchors);
        var d = deltas.to(anchors.dtype);
        var ctr = (d[TensorIndex.Ellipsis, TensorIndex.Slice(0, 2)] * awh).Plus(actr);
        var wh = d[TensorIndex.Ellipsis, TensorIndex.Slice(2, 4)].clamp_max(Of(MaxLogScale)).exp() * awh;
        var xy1 = ctr - wh * Of(0.5);
        var xy2 = ctr.Plus(wh * Of(0.5)) - Of(1);
        if (limit is (double w, double h))
        {
            // scalar clamps per coordinate, no host-built tensor: decode must run inside a CUDA graph capture
            using Scalar xMax = (w - 1).ToScalar(), yMax = (h - 1).ToScalar();
            return stack([
                xy1[TensorIndex.Ellipsis, 0].clamp(Of(0), xMax), xy1[TensorIndex.Ellipsis, 1].clamp(Of(0), yMax),
                xy2[TensorIndex.Ellipsis, 0].clamp(Of(0), xMax), xy2[TensorIndex.Ellipsis, 1].clamp(Of(0), yMax),
            ], -1).MoveToOuterDisposeScope();
        }
        return cat([xy1, xy2], -1).MoveToOuterDisposeScope();
    }

    /// <summary>Centres and sizes (inclusive pixels: w = x2 - x1 + 1) of boxes [..., 4]: ([..., 2], [...,
    /// 2]).</summary>
    public static (Tensor Centre, Tensor Size) CentreSize(Tensor boxes)
    {
        var xy1 = boxes[TensorIndex.Ellipsis, TensorIndex.Slice(0, 2)];
        var wh = (boxes[TensorIndex.Ellipsis, TensorIndex.Slice(2, 4)] - xy1).Plus(Of(1));
        return (xy1.Plus(wh * Of(0.5)), wh);
    }
}

/// <summary>Pairwise IoU with the inclusive-pixel convention, broadcasting over leading dimensions.</summary>
public static class BoxOps
{
    /// <summary>IoU of a [..., N, 4] against b [..., M, 4] -> [..., N, M].</summary>
    public static Tensor PairwiseIou(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        var (inter, areaA, areaB) = Intersection(a, b);
        return (inter / (areaA.unsqueeze(-1).Plus(areaB.unsqueeze(-2)) - inter)).MoveToOuterDisposeScope();
    }

    /// <summary>Intersection over the area of each box of <paramref name="a"/> (for crowd regions): [..., N,
    /// M].</summary>
    public static Tensor PairwiseIoA(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        var (inter, areaA, _) = Intersection(a, b);
        return (inter / areaA.unsqueeze(-1)).MoveToOuterDisposeScope();
    }

    public static Tensor Area(Tensor boxes) =>
        (boxes[TensorIndex.Ellipsis, 2] - boxes[TensorIndex.Ellipsis, 0]).Plus(Of(1))
            * (boxes[TensorIndex.Ellipsis, 3] - boxes[TensorIndex.Ellipsis, 1]).Plus(Of(1));

    static (Tensor, Tensor, Tensor) Intersection(Tensor a, Tensor b)
    {
        var ax1 = a[TensorIndex.Ellipsis, 0].unsqueeze(-1); var ay1 = a[TensorIndex.Ellipsis, 1].unsqueeze(-1);
        var ax2 = a[TensorIndex.Ellipsis, 2].unsqueeze(-1); var ay2 = a[TensorIndex.Ellipsis, 3].unsqueeze(-1);
        var bx1 = b[TensorIndex.Ellipsis, 0].unsqueeze(-2); var by1 = b[TensorIndex.Ellipsis, 1].unsqueeze(-2);
        var bx2 = b[TensorIndex.Ellipsis, 2].unsqueeze(-2); var by2 = b[TensorIndex.Ellipsis, 3].unsqueeze(-2);
        var iw = (ax2.minimum(bx2) - ax1.maximum(bx1)).Plus(Of(1)).clamp_min(Of(0));
        var ih = (ay2.minimum(by2) - ay1.maximum(by1)).Plus(Of(1)).clamp_min(Of(0));
        return (iw * ih, Area(a), Area(b));
    }
}
