namespace RetinaNet.Training;

/// <summary>ODTK's learning-rate schedule: lr(iter) = base_lr * f(iter) with
/// f(iter) = 0.9 * iter / warmup + 0.1 while warmup &gt; 0 and iter &lt;= warmup, otherwise
/// gamma ^ (number of milestones m with m &lt;= iter).
/// <para>Iteration index: ODTK applies f through LambdaLR, stepped once per training iteration after the optimizer
/// step, so the lr used for training step i (1-based, i = 1..iters) is base_lr * f(i - 1), the value LambdaLR holds
/// after i - 1 scheduler.step() calls. <see cref="ForStep"/> applies that convention; <see cref="At"/> takes the
/// LambdaLR index directly.</para></summary>
public sealed class LearningRateSchedule
{
    readonly long[] milestones;

    public double BaseLr { get; }
    public long Warmup { get; }
    public double Gamma { get; }
    public IReadOnlyList<long> Milestones => milestones;

    /// <param name="milestones">Already scaled (see <see cref="Odtk"/> for ODTK's --schedule multiplier).</param>
    public LearningRateSchedule(double baseLr, long warmup, IEnumerable<long> milestones, double gamma = 0.1)
    {
        if (warmup < 0) throw new ArgumentOutOfRangeException(nameof(warmup), warmup, "warmup must be >= 0");
        BaseLr = baseLr;
        Warmup = warmup;
        Gamma = gamma;
        this.milestones = milestones.ToArray();
    }

    /// <summary>ODTK's command-line form: milestones are multiplied by <paramref name="schedule"/> and truncated,
    /// int(m * schedule) (warmup is not scaled).</summary>
    public static LearningRateSchedule Odtk(double baseLr, long warmup, IEnumerable<long> milestones, double gamma,
        double schedule)
        => new(baseLr, warmup, milestones.Select(m => Scale(m, schedule)), gamma);

    /// <summary>ODTK's int(x * schedule), for the iteration count and milestones.</summary>
    public static long Scale(long value, double schedule) => (long)(value * schedule);

    /// <summary>The multiplier f(iter) at LambdaLR index <paramref name="iteration"/> (0 before any scheduler
    /// step).</summary>
    public double Factor(long iteration)
    {
        if (Warmup > 0 && iteration <= Warmup) return 0.9 * iteration / Warmup + 0.1;
        return Math.Pow(Gamma, milestones.Count(m => m <= iteration));
    }

    /// <summary>base_lr * f(iteration), LambdaLR's lr after <paramref name="iteration"/> scheduler steps.</summary>
    public double At(long iteration) => BaseLr * Factor(iteration);

    /// <summary>The lr used by training step <paramref name="step"/> (1-based): base_lr * f(step - 1).</summary>
    public double ForStep(long step)
    {
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), step, "training steps count from 1");
        return At(step - 1);
    }
}
