using TorchSharp;
using RetinaNet.Native;
using static TorchSharp.torch;

namespace RetinaNet.Boxes;

/// <summary>Per-anchor training targets for a batch: <c>Labels</c> [B, N] (-1 ignore, 0 background, k + 1 for
/// class k) and <c>BoxDeltas</c> [B, N, 4] ([B, N, 6] for rotated boxes; zero where the anchor is not
/// foreground).</summary>
public sealed record AnchorTargets(Tensor Labels, Tensor BoxDeltas) : IDisposable
{
    public void Dispose() { Labels.Dispose(); BoxDeltas.Dispose(); }
}

/// <summary>Matches anchors to ground truth for a whole batch at once on the device (no per-image loop):
/// the best-IoU box of each anchor decides (ties: the lower box index); IoU &gt;= foreground is that box's
/// class, &lt; background is background, between is ignored (ODTK's rule). Crowd boxes never become
/// targets; a background anchor that lies mostly inside one (intersection over the anchor's area
/// &gt;= <see cref="CrowdIoA"/>) is ignored instead, as detectron does.</summary>
public sealed class TargetAssigner
{
    /// <summary>Class value for padding rows of the target tensor.</summary>
    public const float Padding = -1;
    /// <summary>Class value marking a crowd (ignore) region.</summary>
    public const float Crowd = -2;
    public const double CrowdIoA = 0.5;

    readonly double background, foreground;
    readonly KernelOptions kernels;

    /// <param name="kernels">null: <see cref="KernelOptions.Default"/>. On a GPU the matching runs as one kernel
    /// (<see cref="AssignKernel"/>) where it compiles, unless turned off here.</param>
    public TargetAssigner(double background = 0.4, double foreground = 0.5, KernelOptions? kernels = null)
    {
        this.background = background;
        this.foreground = foreground;
        this.kernels = kernels ?? KernelOptions.Default;
    }

    /// <param name="anchors">[N, 4] anchors of all levels, concatenated.</param> <param name="targets">[B, M, 5] rows
    /// (x, y, w, h, class) in input pixels, class -1 padding, -2 crowd (ODTK's layout).</param>
    public AnchorTargets Assign(Tensor anchors, Tensor targets)
    {
        if (kernels.Assign && AssignKernel.CanRun(anchors, targets))
            return AssignKernel.Run(anchors, targets, background, foreground);
        using var scope = NewDisposeScope();
        long batch = targets.shape[0], n = anchors.shape[0], m = targets.shape[1];
        var device = anchors.device;
        if (m == 0) return Empty(batch, n, 4, device);

        var t = targets.to(ScalarType.Float32).to(device);
        var xy = t[.., .., 0..2];
        var boxes = cat([xy, xy.Plus(t[.., .., 2..4]) - Of(1)], -1); // [B, M, 4] inclusive corners

        // One intersection pass serves both IoU with objects and coverage by crowd regions.
        var a = anchors.unsqueeze(0); // [1, N, 4]
        var ax1 = a[.., .., 0].unsqueeze(-1); var ay1 = a[.., .., 1].unsqueeze(-1);
        var ax2 = a[.., .., 2].unsqueeze(-1); var ay2 = a[.., .., 3].unsqueeze(-1);
        var bx1 = boxes[.., .., 0].unsqueeze(1); var by1 = boxes[.., .., 1].unsqueeze(1);
        var bx2 = boxes[.., .., 2].unsqueeze(1); var by2 = boxes[.., .., 3].unsqueeze(1);
        var inter = (ax2.minimum(bx2) - ax1.maximum(bx1)).Plus(Of(1)).clamp_min(Of(0))
            * (ay2.minimum(by2) - ay1.maximum(by1)).Plus(Of(1)).clamp_min(Of(0));
        var anchorArea = BoxOps.Area(a).unsqueeze(-1); // [1, N, 1]
        var boxArea = BoxOps.Area(boxes).unsqueeze(1); // [B, 1, M]
        var iou = inter / (anchorArea.Plus(boxArea) - inter); // [B, N, M]
        var (labels, bestIndex, fg) = Match(iou, inter / anchorArea, t[.., .., 4]);
        var matched = boxes.gather(1, bestIndex.unsqueeze(-1).expand(batch, n, 4));
        // Zero deltas off the foreground: padding rows would give log(negative) = NaN, and NaN * 0 is NaN.
        var deltas = BoxCoder.Encode(matched, a).masked_fill(~fg.unsqueeze(-1), Of(0));
        return new AnchorTargets(labels.MoveToOuterDisposeScope(), deltas.MoveToOuterDisposeScope());
    }

    /// <summary>Rotated boxes (ODTK's <c>--rotated-bbox</c>), by the same rule with exact rotated IoU
    /// (<see cref="RotatedIou"/>): targets [B, M, 6] rows (x, y, w, h, theta, class) against anchors' axis form
    /// [N, 4] and corners [N, 8]; box targets are <see cref="RotatedBoxes.Encode"/>'s 6 values. A crowd region's
    /// cover of an anchor comes from the same exact IoU (intersection = IoU (area a + area b) / (1 + IoU)).</summary>
    public AnchorTargets AssignRotated(Tensor anchorAxis, Tensor anchorCorners, Tensor targets)
    {
        using var scope = NewDisposeScope();
        long batch = targets.shape[0], n = anchorAxis.shape[0], m = targets.shape[1];
        var device = anchorAxis.device;
        if (m == 0) return Empty(batch, n, 6, device);
        var t = targets.to(ScalarType.Float32).to(device);
        var (axis, corners) = RotatedBoxes.FromXywhTheta(t[.., .., ..5].reshape(-1, 5)); // [B*M, 6], [B*M, 8]
        var anchorArea = BoxOps.Area(anchorAxis); // [N]
        var boxArea = (t[.., .., 2] * t[.., .., 3]).clamp_min(Of(0)); // [B, M]
        Tensor labels, bestIndex, fg;
        if (kernels.Assign && AssignKernel.CanRunRotated(anchorCorners, targets))
        {
            (labels, bestIndex) = AssignKernel.MatchRotated(anchorCorners, anchorArea, corners, boxArea, t[.., .., 5],
                background, foreground);
            fg = labels > Of(0);
        }
        else
        {
            var iou = RotatedIou.Pairwise(anchorCorners, corners).view(n, batch, m).permute(1, 0, 2); // [B, N, M]
            var area = anchorArea.view(1, n, 1);
            var inter = iou * area.Plus(boxArea.unsqueeze(1)) / iou.Plus(Of(1));
            (labels, bestIndex, fg) = Match(iou, inter / area, t[.., .., 5]);
        }
        var matched = axis.view(batch, m, 6).gather(1, bestIndex.unsqueeze(-1).expand(batch, n, 6));
        var deltas = RotatedBoxes.Encode(matched, anchorAxis.unsqueeze(0)).masked_fill(~fg.unsqueeze(-1), Of(0));
        return new AnchorTargets(labels.MoveToOuterDisposeScope(), deltas.MoveToOuterDisposeScope());
    }

    /// <summary>No targets at all: every anchor background, zero deltas of <paramref name="values"/> each.</summary>
    static AnchorTargets Empty(long batch, long n, int values, Device device) => new(
        zeros(batch, n, dtype: ScalarType.Int64, device: device).MoveToOuterDisposeScope(),
        zeros(batch, n, values, device: device).MoveToOuterDisposeScope());

    /// <summary>ODTK's rule on the IoUs [B, N, M] of anchors with the targets of class <paramref name="cls"/> [B, M]:
    /// each anchor's best object (ties: the lower box index), foreground at or above the one threshold, background
    /// below the other, ignored between; then background anchors mostly inside a crowd region
    /// (<paramref name="cover"/>: intersection over the anchor's area) ignored too.</summary>
    (Tensor Labels, Tensor BestIndex, Tensor Foreground) Match(Tensor iou, Tensor cover, Tensor cls)
    {
        long m = iou.shape[2];
        using Scalar last = (m - 1).ToScalar(), low = background.ToScalar(), high = foreground.ToScalar();
        var objectIou = iou.masked_fill(~(cls >= Of(0)).unsqueeze(1), Of(-1));
        var best = objectIou.amax([-1]); // [B, N]
        var columns = Arange(m, ScalarType.Int64, iou.device).view(1, 1, m);
        // the first best box
        var bestIndex = where(objectIou == best.unsqueeze(-1), columns, tensor(m)).amin([-1]).clamp_max(last);
        var labels = full(best.shape, Of(-1), dtype: ScalarType.Int64, device: best.device);
        labels = labels.masked_fill(best < low, Of(0));
        var matchedClass = cls.gather(1, bestIndex).to(ScalarType.Int64).Plus(Of(1));
        var fg = best >= high;
        labels = where(fg, matchedClass, labels);
        var crowdCover = cover.masked_fill(~(cls == Of(Crowd)).unsqueeze(1), Of(0)).amax([-1]);
        return (labels.masked_fill((labels == Of(0)) & (crowdCover >= Of(CrowdIoA)), Of(-1)), bestIndex, fg);
    }
}
