using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Boxes;

/// <summary>Rotated boxes with ODTK's <c>--rotated-bbox</c> conventions, as tensor ops (CPU or GPU).
/// A box is written [x, y, w, h, theta]: the axis-aligned box before rotation and theta in radians, turning it
/// anticlockwise as seen on screen (y down) about (x + w/2, y + h/2). Its corners, used for matching, drawing,
/// output and evaluation alike, are ordered top-left, top-right, bottom-right, bottom-left. ODTK's output polygon
/// (<c>rotate_box</c>) turns the other way; we do not copy that.</summary>
public static class RotatedBoxes
{
    /// <summary>ODTK's generate_anchors_rotated for one cell: anchor a = (angle * scales + scale) * ratios + ratio.
    /// Returns the axis-aligned anchors [A, 4] (x1, y1, x2, y2, widths and heights rounded to whole pixels) and
    /// their corners [A, 8], rotated about the cell's pixel centre, float32 on the CPU.</summary>
    public static (Tensor Axis, Tensor Corners) CellAnchors(double stride, IReadOnlyList<double> ratios,
        IReadOnlyList<double> scales, IReadOnlyList<double> angles)
    {
        using var scope = NewDisposeScope();
        int n = ratios.Count * scales.Count;
        var r = tensor(Enumerable.Range(0, n).Select(i => (float)ratios[i % ratios.Count]).ToArray());
        var s = tensor(Enumerable.Range(0, n).Select(i => (float)scales[i / ratios.Count]).ToArray()).view(-1, 1);
        using var side = ((float)stride).ToScalar();
        var wh = full(n, 2, side);
        var ws = (wh[.., 0] * wh[.., 1] / r).sqrt().round();
        var dwh = stack([ws, (ws * r).round()], 1);
        var xy0 = (wh - dwh * s) * Of(0.5);
        var xy2 = wh.Plus(dwh * s) * Of(0.5) - Of(1);
        var xy1 = stack([xy0[.., 0], xy2[.., 1]], 1);
        var xy3 = stack([xy2[.., 0], xy0[.., 1]], 1);
        var theta = tensor(angles.Select(a => (float)a).ToArray());
        var rotation = Rotation(theta); // [angles, 2, 2]
        using Scalar halfStride = (stride / 2).ToScalar(), pixelCentre = (stride / 2 - 0.5).ToScalar();
        Tensor Turn(Tensor xy) => // [n, 2] -> [angles * n, 2]
            matmul(rotation, (xy.t() - halfStride).Plus(Of(0.5))).Plus(pixelCentre).permute(0, 2, 1).reshape(-1, 2);
        var corners = OrderCorners(stack([Turn(xy0), Turn(xy1), Turn(xy2), Turn(xy3)], 1)).view(-1, 8);
        var axis = cat([xy0, xy2], 1).repeat(angles.Count, 1);
        return (axis.MoveToOuterDisposeScope(), corners.MoveToOuterDisposeScope());
    }

    /// <summary>ODTK's rotate_boxes: boxes [N, 5] (x, y, w, h, theta) to the axis form [N, 6] (x1, y1, x2, y2, sin,
    /// cos; inclusive pixels: x2 = x + w - 1) that the coder uses, and their corners [N, 8].</summary>
    public static (Tensor Axis, Tensor Corners) FromXywhTheta(Tensor boxes)
    {
        using var scope = NewDisposeScope();
        var x = boxes[.., 0]; var y = boxes[.., 1]; var w = boxes[.., 2]; var h = boxes[.., 3];
        var theta = boxes[.., 4];
        var centre = stack([x.Plus(w / Of(2)), y.Plus(h / Of(2))], 1).unsqueeze(-1); // [N, 2, 1]
        var x2 = x.Plus(w); var y2 = y.Plus(h);
        // [N, 2, 4]
        var points = stack([stack([x, y], 1), stack([x2, y], 1), stack([x2, y2], 1), stack([x, y2], 1)], 2);
        var turned = matmul(Rotation(theta), points - centre).Plus(centre).permute(0, 2, 1); // [N, 4, 2]
        var axis = cat([boxes[.., ..2], boxes[.., ..2].Plus(boxes[.., 2..4]) - Of(1), theta.sin().unsqueeze(1),
            theta.cos().unsqueeze(1)], 1);
        return (axis.MoveToOuterDisposeScope(), OrderCorners(turned).view(-1, 8).MoveToOuterDisposeScope());
    }

    /// <summary>ODTK's box2delta_rotated: boxes [..., 6] (axis form) against axis anchors [..., 4]: centre offsets and
    /// log sizes (as <see cref="BoxCoder.Encode"/>), then the box's sin and cos as they are.</summary>
    public static Tensor Encode(Tensor boxes, Tensor anchors)
    {
        using var scope = NewDisposeScope();
        var deltas = BoxCoder.Encode(boxes[TensorIndex.Ellipsis, ..4], anchors);
        return cat([deltas, boxes[TensorIndex.Ellipsis, 4..6]], -1).MoveToOuterDisposeScope();
    }

    /// <summary>ODTK's delta2box_rotated: deltas [..., 6] on axis anchors [..., 4] to [..., 5] (x1, y1, x2, y2,
    /// theta = atan2(sin, cos)), corners clamped to the input's extent <paramref name="limit"/> (width, height in
    /// pixels).</summary>
    public static Tensor Decode(Tensor deltas, Tensor anchors, (double W, double H) limit)
    {
        using var scope = NewDisposeScope();
        var box = BoxCoder.Decode(deltas[TensorIndex.Ellipsis, ..4], anchors, limit);
        var theta = atan2(deltas[TensorIndex.Ellipsis, 4], deltas[TensorIndex.Ellipsis, 5]).to(box.dtype);
        return cat([box, theta.unsqueeze(-1)], -1).MoveToOuterDisposeScope();
    }

    /// <summary>Corners [N, 8] (tl, tr, br, bl) of boxes [N, 5] given as (x1, y1, x2, y2, theta) — decode's output
    /// — turned about their centre the same way as <see cref="FromXywhTheta"/>.</summary>
    public static Tensor CornersOfDecoded(Tensor boxes)
    {
        using var scope = NewDisposeScope();
        var wh = (boxes[.., 2..4] - boxes[.., ..2]).Plus(Of(1));
        return FromXywhTheta(cat([boxes[.., ..2], wh, boxes[.., 4..5]], 1)).Corners.MoveToOuterDisposeScope();
    }

    /// <summary>[[cos, sin], [-sin, cos]] per angle: with y pointing down, this turns anticlockwise on
    /// screen.</summary>
    static Tensor Rotation(Tensor theta)
    {
        var c = theta.cos(); var s = theta.sin();
        return stack([stack([c, s], -1), stack([-s, c], -1)], -2);
    }

    /// <summary>ODTK's order_points: corners [N, 4, 2] as top-left, top-right, bottom-right, bottom-left (the two
    /// leftmost points by y, then of the other two the farther from top-left is bottom-right).</summary>
    public static Tensor OrderCorners(Tensor corners)
    {
        using var scope = NewDisposeScope();
        var byX = corners.gather(1, corners[.., .., 0].argsort(1).unsqueeze(-1).expand(-1, -1, 2));
        var left = byX[.., ..2]; var right = byX[.., 2..];
        var leftByY = left.gather(1, left[.., .., 1].argsort(1).unsqueeze(-1).expand(-1, -1, 2));
        var tl = leftByY[.., 0]; var bl = leftByY[.., 1];
        var distance = (right - tl.unsqueeze(1)).pow(Of(2)).sum(-1); // [N, 2]
        var far = distance.argmax(1, keepdim: true).unsqueeze(-1).expand(-1, 1, 2);
        var br = right.gather(1, far).squeeze(1);
        var tr = right.gather(1, Of(1).Minus(far)).squeeze(1);
        return stack([tl, tr, br, bl], 1).MoveToOuterDisposeScope();
    }
}
