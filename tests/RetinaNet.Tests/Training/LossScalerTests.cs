using RetinaNet.Training;
using Xunit;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Training;

public class LossScalerTests
{
    [Fact]
    public void Defaults_are_GradScalers()
    {
        var s = new LossScaler();
        Assert.Equal(65536.0, s.CurrentScale);
        Assert.Equal(2.0, s.GrowthFactor);
        Assert.Equal(0.5, s.BackoffFactor);
        Assert.Equal(2000, s.GrowthInterval);
    }

    [Fact]
    public void Scales_the_loss_and_unscales_gradients_in_place()
    {
        using var scope = NewDisposeScope();
        var s = new LossScaler(1024);
        Assert.Equal(1.5f * 1024, s.Scale(tensor(1.5f)).item<float>());
        var grad = tensor(new[] { 512f, -1024f, 3072f });
        Assert.True(s.UnscaleAndCheck(grad));
        Assert.Equal(new[] { 0.5f, -1f, 3f }, grad.data<float>().ToArray());
    }

    [Theory]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    [InlineData(float.NaN)]
    public void Non_finite_gradients_skip_the_step_and_halve_the_scale(float bad)
    {
        using var scope = NewDisposeScope();
        var s = new LossScaler(65536, growthInterval: 3);
        s.Update(true);
        s.Update(true);
        Assert.Equal(2, s.GoodSteps);
        var grad = tensor(new[] { 1f, bad, 2f });
        bool finite = s.UnscaleAndCheck(grad);
        Assert.False(finite);
        s.Update(finite);
        Assert.Equal(32768.0, s.CurrentScale);
        Assert.Equal(0, s.GoodSteps); // the count restarts
    }

    [Fact]
    public void Recovers_by_growing_after_N_good_steps()
    {
        var s = new LossScaler(65536, growthInterval: 3);
        s.Update(false);
        s.Update(false);
        Assert.Equal(16384.0, s.CurrentScale);
        s.Update(true); s.Update(true);
        Assert.Equal(16384.0, s.CurrentScale);
        s.Update(true);
        Assert.Equal(32768.0, s.CurrentScale);
        Assert.Equal(0, s.GoodSteps);
        for (int i = 0; i < 3; i++) s.Update(true);
        Assert.Equal(65536.0, s.CurrentScale);

        var d = new LossScaler();
        for (int i = 0; i < 1999; i++) d.Update(true);
        Assert.Equal(65536.0, d.CurrentScale);
        d.Update(true);
        Assert.Equal(131072.0, d.CurrentScale);
    }

    [Fact]
    public void State_round_trips()
    {
        var s = new LossScaler(65536, growthInterval: 3);
        s.Update(false); s.Update(true);
        var saved = s.State();
        Assert.Equal(new LossScalerState(32768, 1), saved);
        var r = new LossScaler(growthInterval: 3);
        r.LoadState(saved);
        r.Update(true); r.Update(true);
        Assert.Equal(65536.0, r.CurrentScale);
        Assert.Throws<ArgumentOutOfRangeException>(() => r.LoadState(new LossScalerState(double.NaN, 0)));
    }
}
