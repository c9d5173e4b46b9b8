using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Training;

/// <summary>The scale and good-step count of a <see cref="LossScaler"/>, for checkpoints (torch's GradScaler
/// state_dict keys "scale" and "_growth_tracker").</summary>
public readonly record struct LossScalerState(double Scale, int GoodSteps);

/// <summary>Dynamic loss scaling for fp16 training, as torch.cuda.amp.GradScaler: the loss is multiplied by the scale
/// before backward, gradients are divided by it before the optimizer step; a step whose gradients are not finite is
/// skipped and the scale multiplied by <see cref="BackoffFactor"/>; after <see cref="GrowthInterval"/> consecutive
/// finite steps the scale is multiplied by <see cref="GrowthFactor"/>. <para>Use: <c>Scale(loss).backward(); bool ok =
/// UnscaleAndCheck(sgd.FlatGrad); if (ok) sgd.Step(lr); Update(ok);</c></para></summary>
public sealed class LossScaler
{
    public double CurrentScale { get; private set; }
    public int GoodSteps { get; private set; }
    public double GrowthFactor { get; }
    public double BackoffFactor { get; }
    public int GrowthInterval { get; }

    public LossScaler(double initScale = 65536.0, double growthFactor = 2.0, double backoffFactor = 0.5,
        int growthInterval = 2000)
    {
        if (!(initScale > 0) || double.IsInfinity(initScale)) throw new ArgumentOutOfRangeException(nameof(initScale),
            initScale, "the scale must be positive and finite");
        if (!(growthFactor > 1)) throw new ArgumentOutOfRangeException(nameof(growthFactor), growthFactor,
            "growth factor must be > 1");
        if (!(backoffFactor > 0 && backoffFactor < 1)) throw new ArgumentOutOfRangeException(nameof(backoffFactor),
            backoffFactor, "backoff factor must be in (0, 1)");
        if (growthInterval < 1) throw new ArgumentOutOfRangeException(nameof(growthInterval), growthInterval,
            "growth interval must be >= 1");
        CurrentScale = initScale;
        GrowthFactor = growthFactor;
        BackoffFactor = backoffFactor;
        GrowthInterval = growthInterval;
    }

    /// <summary>loss * scale (a new tensor).</summary>
    public Tensor Scale(Tensor loss)
    {
        using var scale = CurrentScale.ToScalar();
        return loss * scale;
    }

    /// <summary>Divides <paramref name="flatGrad"/> by the scale in place (multiplying by the fp32 reciprocal, as
    /// GradScaler) and returns whether every element is finite. One host sync.</summary>
    public bool UnscaleAndCheck(Tensor flatGrad)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var inverse = ((float)(1.0 / CurrentScale)).ToScalar();
        flatGrad.mul_(inverse);
        return flatGrad.isfinite().all().item<bool>();
    }

    /// <summary>Backs off after a non-finite step (and restarts the count), otherwise counts a good step and grows
    /// the scale every <see cref="GrowthInterval"/> good steps.</summary>
    public void Update(bool finite)
    {
        if (!finite)
        {
            CurrentScale *= BackoffFactor;
            GoodSteps = 0;
            return;
        }
        if (++GoodSteps == GrowthInterval)
        {
            CurrentScale *= GrowthFactor;
            GoodSteps = 0;
        }
    }

    public LossScalerState State() => new(CurrentScale, GoodSteps);

    public void LoadState(LossScalerState state)
    {
        if (!(state.Scale > 0) || double.IsInfinity(state.Scale)) throw new ArgumentOutOfRangeException(nameof(state),
            state.Scale, "saved loss scale must be positive and finite");
        if (state.GoodSteps < 0 || state.GoodSteps >= GrowthInterval)
            throw new ArgumentOutOfRangeException(nameof(state), state.GoodSteps,
                $"saved good-step count must be in [0, {GrowthInterval})");
        CurrentScale = state.Scale;
        GoodSteps = state.GoodSteps;
    }
}
