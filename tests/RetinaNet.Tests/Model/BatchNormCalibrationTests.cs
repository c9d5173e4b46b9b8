using RetinaNet.Model;
using Xunit;
using static RetinaNet.Native.Scalars;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Model;

public class BatchNormCalibrationTests
{
    [Fact]
    public void CalibrationSetsTheFirstNormToTheStatisticsOfItsInput()
    {
        manual_seed(4);
        using var model = new RetinaNetModel(new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 2 });
        model.Initialize(4);
        using var images = rand(3, 3, 128, 128);
        model.CalibrateBatchNorm(images);
        var state = StateDict.Of(model);
        // independent reference: conv1 by hand (7x7, stride 2, padding 3), then per-channel mean and variance
        var prefix = state.Keys.First(k => k.EndsWith("conv1.weight") && !k.Contains("layer"))
            .Replace("conv1.weight", "");
        using var conv = nn.functional.conv2d(images, state[prefix + "conv1.weight"], strides: [2, 2], padding: [3, 3]);
        var mean = conv.mean([0, 2, 3]); var variance = conv.var([0, 2, 3], unbiased: false);
        Assert.True(allclose(state[prefix + "bn1.running_mean"], mean, rtol: 1e-4, atol: 1e-5));
        Assert.True(allclose(state[prefix + "bn1.running_var"], variance, rtol: 1e-4, atol: 1e-6));
        Assert.True(state[prefix + "bn1.weight"].eq(Of(1)).all().item<bool>());
        // and deeper layers were calibrated on normalised inputs: their statistics are no longer the identity defaults
        Assert.False(state[prefix + "layer4.1.bn2.running_var"].eq(Of(1)).all().item<bool>());
    }
}
