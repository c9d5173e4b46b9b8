using RetinaNet.Native;
using Xunit;
using static RetinaNet.Native.Scalars;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Native;

/// <summary>The libtorch settings behind correct CPU training (<see cref="CpuNumerics"/>), against float64
/// convolutions (libtorch's non-oneDNN kernels) as the reference. Runs with the tests that own the process's global
/// torch state: it switches oneDNN and the junk fill, which must not reach a test running beside it.</summary>
[Collection("global torch RNG")]
public class CpuNumericsTests
{
    [Fact]
    public void EntryPointsResolve()
    {
        Assert.True(CpuNumerics.Available, $"libtorch lacks {CpuNumerics.SetMkldnnSymbol}, " +
            $"{CpuNumerics.SetNnpackSymbol} or {CpuNumerics.JunkFillFlag}");
        Assert.True(CpuNumerics.Ensure());
        Assert.True(CpuNumerics.OneDnnEnabled);
        using (CpuNumerics.ExactGradients())
        {
            using (CpuNumerics.ExactGradients()) Assert.False(CpuNumerics.OneDnnEnabled);
            Assert.False(CpuNumerics.OneDnnEnabled); // the outer scope still holds it off
        }
        Assert.True(CpuNumerics.OneDnnEnabled);
    }

    /// <summary>With the training setting the gradients of the channel counts our models have (3, 24, 27, 36; and a
    /// blocked 32) equal float64 to float32 rounding, also after the junk fill filled fresh memory
    /// with NaN patterns.</summary>
    [Theory]
    [InlineData(3)]
    [InlineData(24)]
    [InlineData(27)]
    [InlineData(32)]
    [InlineData(36)]
    public void TrainingGradientsEqualFloat64(int channels)
    {
        var (x, w, upstream) = Problem(channels);
        var (gx64, gw64) = Gradients(x.to(ScalarType.Float64), w.to(ScalarType.Float64),
            upstream.to(ScalarType.Float64));
        using var exact = CpuNumerics.ExactGradients();
        for (int i = 0; i < 3; i++)
        {
            CpuNumerics.JunkFill(true);
            Tensor gx, gw;
            try { (gx, gw) = Gradients(x, w, upstream); }
            finally { CpuNumerics.JunkFill(false); }
            double dx = (gx.to(ScalarType.Float64) - gx64).abs().max().item<double>(),
                dw = (gw.to(ScalarType.Float64) - gw64).abs().max().item<double>();
            Assert.True(dx < 1e-4 && dw < 1e-3, $"repeat {i}: input gradient off by {dx}, weight gradient by {dw}");
        }
    }

    static (Tensor X, Tensor W, Tensor Upstream) Problem(int channels)
    {
        var g = new TorchSharp.torch.Generator(3);
        return (randn([2, 64, 12, 12], generator: g), randn([channels, 64, 3, 3], generator: g) * Of(0.05),
            randn([2, channels, 12, 12], generator: g));
    }

    static (Tensor GradInput, Tensor GradWeight) Gradients(Tensor x, Tensor w, Tensor upstream)
    {
        var xi = x.detach().requires_grad_(true);
        var wi = w.detach().requires_grad_(true);
        nn.functional.conv2d(xi, wi, padding: [1, 1]).backward([upstream]);
        return (xi.grad!.detach().clone(), wi.grad!.detach().clone());
    }
}
