using RetinaNet.Training;
using Xunit;

namespace RetinaNet.Tests.Training;

public class LearningRateScheduleTests
{
    // ODTK defaults: lr 0.01, warmup 1000, milestones 60000 80000, gamma 0.1
    static readonly LearningRateSchedule Default = new(0.01, 1000, [60000, 80000], 0.1);

    [Theory]
    [InlineData(0, 0.001)]          // 0.9 * 0 / 1000 + 0.1 = 0.1
    [InlineData(1, 0.0010090)]      // 0.9 / 1000 + 0.1 = 0.1009
    [InlineData(500, 0.0055)]       // 0.45 + 0.1 = 0.55
    [InlineData(1000, 0.01)]        // end of warmup: 1.0
    [InlineData(1001, 0.01)]
    [InlineData(59999, 0.01)]
    [InlineData(60000, 0.001)]      // one milestone reached
    [InlineData(79999, 0.001)]
    [InlineData(80000, 0.0001)]     // two
    [InlineData(90000, 0.0001)]
    public void Odtk_defaults_at_lambda_index(long iteration, double expected)
        => Assertions.Close(expected, Default.At(iteration), 1e-12, $"iteration {iteration}");

    [Fact]
    public void Training_step_i_uses_the_value_after_i_minus_1_scheduler_steps()
    {
        Assertions.Close(0.001, Default.ForStep(1), 1e-12, "step 1");
        Assertions.Close(0.0010090, Default.ForStep(2), 1e-12, "step 2");
        Assertions.Close(0.01, Default.ForStep(1001), 1e-12, "step 1001");
        Assertions.Close(0.01, Default.ForStep(60000), 1e-12, "step 60000");
        Assertions.Close(0.001, Default.ForStep(60001), 1e-12, "step 60001");
        Assert.Throws<ArgumentOutOfRangeException>(() => Default.ForStep(0));
    }

    [Fact]
    public void Schedule_multiplier_scales_and_truncates_milestones_but_not_warmup()
    {
        var half = LearningRateSchedule.Odtk(0.01, 1000, [60000, 80001], 0.1, 0.5);
        Assert.Equal([30000L, 40000L], half.Milestones); // int(80001 * 0.5) = 40000
        Assert.Equal(45000, LearningRateSchedule.Scale(90000, 0.5));
        Assert.Equal(3, LearningRateSchedule.Scale(7, 0.5));
        Assertions.Close(0.0055, half.At(500), 1e-12, "warmup unscaled");
        Assertions.Close(0.01, half.At(29999), 1e-12, "before first");
        Assertions.Close(0.001, half.At(30000), 1e-12, "first milestone");
        Assertions.Close(0.0001, half.At(40000), 1e-12, "second milestone");
    }

    [Fact]
    public void No_warmup_starts_at_base_lr_and_gamma_applies()
    {
        var s = new LearningRateSchedule(0.02, 0, [10, 20, 30], 0.5);
        Assertions.Close(0.02, s.At(0), 1e-15, "0");
        Assertions.Close(0.01, s.At(10), 1e-15, "10");
        Assertions.Close(0.005, s.At(25), 1e-15, "25");
        Assertions.Close(0.0025, s.At(30), 1e-15, "30");
    }
}
