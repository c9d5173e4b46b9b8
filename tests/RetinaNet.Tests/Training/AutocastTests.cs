using RetinaNet.Native;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Training;

public class AutocastTests
{
    [Fact]
    public void Symbols_resolve()
    {
        Assert.True(Autocast.Available, $"autocast unavailable: {Autocast.MissingReason}");
        Assert.Null(Autocast.MissingReason);
    }

    [Fact]
    public void Linear_and_conv_run_in_bf16_and_weight_gradients_stay_fp32()
    {
        Assert.True(Autocast.Available, $"autocast unavailable: {Autocast.MissingReason}");
        using var scope = NewDisposeScope();
        var linear = nn.Linear(6, 4);
        var conv = nn.Conv2d(2, 3, 3);
        var x = randn(5, 6);
        var image = randn(1, 2, 5, 5);

        Assert.False(Autocast.IsEnabled(DeviceType.CPU));
        using (Autocast.Enable(DeviceType.CPU, ScalarType.BFloat16))
        {
            Assert.True(Autocast.IsEnabled(DeviceType.CPU));
            var y = linear.forward(x);
            var z = conv.forward(image);
            Assert.Equal(ScalarType.BFloat16, y.dtype);
            Assert.Equal(ScalarType.BFloat16, z.dtype);
            y.to(ScalarType.Float32).sum().Plus(z.to(ScalarType.Float32).sum()).backward();
        }
        Assert.False(Autocast.IsEnabled(DeviceType.CPU));
        Assert.Equal(ScalarType.Float32, linear.weight!.grad!.dtype);
        Assert.Equal(ScalarType.Float32, conv.weight!.grad!.dtype);
        Assert.Equal(ScalarType.Float32, linear.weight.dtype);
        Assert.Equal(ScalarType.Float32, linear.forward(x).dtype);
        Assert.Equal(ScalarType.Float32, conv.forward(image).dtype);
    }

    [Fact]
    public void Nesting_restores_the_outer_state()
    {
        Assert.True(Autocast.Available, $"autocast unavailable: {Autocast.MissingReason}");
        using var scope = NewDisposeScope();
        var linear = nn.Linear(3, 2);
        var x = randn(2, 3);
        using (Autocast.Enable(DeviceType.CPU, ScalarType.BFloat16))
        {
            using (Autocast.Enable(DeviceType.CPU, ScalarType.Float16))
            {
                Assert.True(Autocast.IsEnabled(DeviceType.CPU));
                Assert.Equal(ScalarType.Float16, linear.forward(x).dtype);
            }
            Assert.True(Autocast.IsEnabled(DeviceType.CPU));
            Assert.Equal(ScalarType.BFloat16, linear.forward(x).dtype); // outer dtype restored
        }
        Assert.False(Autocast.IsEnabled(DeviceType.CPU));
        Assert.False(Autocast.IsEnabled(DeviceType.CUDA)); // the other device was never touched
        Assert.Equal(ScalarType.Float32, linear.forward(x).dtype);
    }

    [Fact]
    public void State_is_per_thread()
    {
        Assert.True(Autocast.Available, $"autocast unavailable: {Autocast.MissingReason}");
        using (Autocast.Enable(DeviceType.CPU, ScalarType.BFloat16))
        {
            bool other = true;
            var t = new Thread(() => other = Autocast.IsEnabled(DeviceType.CPU));
            t.Start();
            t.Join();
            Assert.False(other);
        }
    }
}
