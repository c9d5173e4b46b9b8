using TorchSharp;
using RetinaNet.Boxes;
using RetinaNet.Native;
using static TorchSharp.torch;

namespace RetinaNet.Model;

/// <summary>ODTK's losses, elementwise (reduction is the caller's).</summary>
public static class Losses
{
    /// <summary>Sigmoid focal loss (Lin et al.): alpha_t * (1 - p_t)^gamma * BCE, targets in {0, 1}.</summary>
    public static Tensor Focal(Tensor logits, Tensor targets, double alpha = 0.25, double gamma = 2)
    {
        using var scope = NewDisposeScope();
        var p = logits.sigmoid();
        var ce = nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction: nn.Reduction.None);
        using Scalar a = alpha.ToScalar(), notA = (1 - alpha).ToScalar(), g = gamma.ToScalar();
        var alphaT = (targets * a).Plus(Of(1).Minus(targets) * notA);
        var pt = where(targets == Of(1), p, Of(1).Minus(p));
        return (alphaT * Of(1).Minus(pt).pow(g) * ce).MoveToOuterDisposeScope();
    }

    /// <summary>Smooth L1 with ODTK's beta 0.11: |x| - beta/2 for |x| &gt;= beta, else x^2 / (2 beta).</summary>
    public static Tensor SmoothL1(Tensor prediction, Tensor target, double beta = 0.11)
    {
        using var scope = NewDisposeScope();
        var x = (prediction - target).abs();
        using Scalar b = beta.ToScalar(), halfB = (0.5 * beta).ToScalar();
        return where(x >= b, x - halfB, x.pow(Of(2)) * Of(0.5) / b).MoveToOuterDisposeScope();
    }
}

/// <summary>RetinaNet's training loss for a batch, all levels at once: focal loss over non-ignored anchors and
/// smooth L1 over foreground anchors, each summed and divided by ODTK's normaliser (per level the
/// foreground count clamped to at least 1, summed over levels). Computed in float32.</summary>
public sealed class DetectionLoss
{
    readonly TargetAssigner assigner;
    readonly int classes, anchorsPerLocation, boxValues;
    readonly bool rotated;
    readonly KernelOptions kernels;

    /// <param name="kernels">null: <see cref="KernelOptions.Default"/>. On a GPU, both losses run as our fused kernels
    /// (<see cref="FocalLossKernel"/>, <see cref="BoxLossKernel"/>) where they compile, unless turned off
    /// here.</param>
    public DetectionLoss(DetectorConfig config, KernelOptions? kernels = null)
    {
        this.kernels = kernels ?? KernelOptions.Default;
        assigner = new TargetAssigner(config.AnchorIous.Background, config.AnchorIous.Foreground, this.kernels);
        classes = config.Classes;
        anchorsPerLocation = config.Anchors.Count;
        (rotated, boxValues) = (config.Rotated, config.BoxValues);
    }

    /// <returns>(classification loss, box loss), scalar tensors.</returns>
    public (Tensor Classification, Tensor Box) Compute(HeadOutputs heads, LevelAnchors anchors, Tensor targets)
    {
        using var scope = NewDisposeScope();
        using var assigned = rotated ? assigner.AssignRotated(anchors.All, anchors.AllCorners, targets)
            : assigner.Assign(anchors.All, targets);
        var labels = assigned.Labels;
        var fg = labels > Of(0);

        bool fused = kernels.FusedLosses && FocalLossKernel.CanRun(heads.ClassLogits)
            && BoxLossKernel.CanRun(heads.BoxDeltas);
        var clsLoss = fused
            ? FocalLossKernel.Sum(heads.ClassLogits, labels, classes)
            // [B, N, C]
            : FocalSum(cat(heads.ClassLogits.Select(l => PerAnchor(l, classes)).ToArray(), 1).to(ScalarType.Float32),
            labels, fg);
        var boxLoss = fused
            ? BoxLossKernel.Sum(heads.BoxDeltas, labels, assigned.BoxDeltas)
            // [B, N, K]
            : Losses.SmoothL1(cat(heads.BoxDeltas.Select(l => PerAnchor(l, boxValues)).ToArray(),
            1).to(ScalarType.Float32), assigned.BoxDeltas)
                .masked_fill(~fg.unsqueeze(-1), Of(0)).sum();

        var normaliser = stack(fg.split(anchors.Counts,
            1).Select(l => l.sum().clamp_min(Of(1))).ToArray()).sum().to(ScalarType.Float32);
        return ((clsLoss / normaliser).MoveToOuterDisposeScope(), (boxLoss / normaliser).MoveToOuterDisposeScope());
    }

    /// <summary>The focal loss summed over non-ignored anchors (labels &gt;= 0) and all classes, with one-hot targets
    /// (class labels − 1 for labels &gt; 0): every element is first charged as a negative, (1 − α) p^γ
    /// softplus(x) (binary cross-entropy against 0), then each foreground anchor's one positive element is corrected to
    /// α (1 − p)^γ softplus(−x). The same sum as <see cref="Losses.Focal"/> on a one-hot tensor, in a third of
    /// the passes over the [B, N, C] logits (the largest tensor of a training step).</summary>
    static Tensor FocalSum(Tensor logits, Tensor labels, Tensor fg, double alpha = 0.25, double gamma = 2)
    {
        using var scope = NewDisposeScope();
        // [B, N]
        using Scalar a = alpha.ToScalar(), notA = (1 - alpha).ToScalar(), g = gamma.ToScalar();
        var negatives = (logits.sigmoid().pow(g) * Softplus(logits)).sum(-1).mul_(notA);
        // [B, N]
        var x = logits.gather(2, (labels - Of(1)).clamp_min(Of(0)).unsqueeze(-1)).squeeze(-1);
        var p = x.sigmoid();
        // softplus(-x) = -log sigmoid(x)
        var correction = Of(1).Minus(p).pow(g) * a * nn.functional.logsigmoid(x).neg_()
            - p.pow(g) * notA * Softplus(x);
        var perAnchor = negatives.Plus(correction * fg.to(logits.dtype));
        return perAnchor.masked_fill(labels < Of(0), Of(0)).sum().MoveToOuterDisposeScope();
    }

    /// <summary>log(1 + e^x), as -log sigmoid(-x): TorchSharp's softplus makes temporary Scalars (see
    /// <see cref="Native.Scalars"/>).</summary>
    static Tensor Softplus(Tensor x)
    {
        using var minusX = x.neg();
        return nn.functional.logsigmoid(minusX).neg_();
    }

    /// <summary>[B, A*K, H, W] head map to [B, A*H*W, K], anchors ordered (a, y, x) like
    /// <see cref="Anchors.ForLevel"/>.</summary>
    public Tensor PerAnchor(Tensor head, int k)
    {
        long b = head.shape[0], h = head.shape[2], w = head.shape[3];
        return head.view(b, anchorsPerLocation, k, h, w).permute(0, 1, 3, 4, 2).reshape(b, -1, k);
    }
}
