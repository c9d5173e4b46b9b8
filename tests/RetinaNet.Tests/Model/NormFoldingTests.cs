using RetinaNet.Model;
using Xunit;
using static RetinaNet.Native.Scalars;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Model;

/// <summary>A frozen norm folded into the convolution before it (<see cref="FrozenBatchNorm2d.Fold"/>), against the
/// norm's formula written out: γ (x − μ) / √(σ² + ε) + β over the convolution's output, in float64.</summary>
public class NormFoldingTests
{
    [Theory]
    [InlineData(false, 1)]
    [InlineData(true, 1)]
    [InlineData(false, 2)]
    public void FusedConvolutionEqualsConvolutionThenNorm(bool convBias, long groups)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(5);
        using var conv = nn.Conv2d(4, 6, 3, padding: 1, groups: groups, bias: convBias, dtype: ScalarType.Float64);
        using var norm = new FrozenBatchNorm2d(6);
        var gamma = rand([6], generator: g, dtype: ScalarType.Float64).Plus(Of(0.5));
        var beta = randn([6], generator: g, dtype: ScalarType.Float64);
        var mean = randn([6], generator: g, dtype: ScalarType.Float64);
        var variance = (rand([6], generator: g, dtype: ScalarType.Float64) * Of(3.0)).Plus(Of(0.1));
        using (no_grad())
        {
            var buffers = norm.named_buffers().ToDictionary(b => b.name, b => b.buffer);
            buffers["weight"].copy_(gamma); buffers["bias"].copy_(beta);
            buffers["running_mean"].copy_(mean); buffers["running_var"].copy_(variance);
            // the norm keeps float32 statistics: the formula below uses what it stored
            (gamma, beta, mean, variance) = (buffers["weight"].to(ScalarType.Float64),
                buffers["bias"].to(ScalarType.Float64), buffers["running_mean"].to(ScalarType.Float64),
                buffers["running_var"].to(ScalarType.Float64));
        }
        var x = randn([2, 4, 7, 9], generator: g, dtype: ScalarType.Float64);
        using var noGrad = no_grad();
        var view = new long[] { 1, -1, 1, 1 };
        var expected = ((conv.forward(x) - mean.view(view)) / variance.Plus(Of(FrozenBatchNorm2d.Eps)).sqrt().view(view)
            * gamma.view(view)).Plus(beta.view(view));
        var (weight, bias) = FrozenBatchNorm2d.Fold(conv, norm);
        Assert.Equal(ScalarType.Float64, weight.dtype);
        var folded = nn.functional.conv2d(x, weight, bias, padding: [1, 1], groups: groups);
        Assert.True(folded.allclose(expected, rtol: 1e-12, atol: 1e-12),
            $"max difference {(folded - expected).abs().max().item<double>()}");
    }

    /// <summary>What a ResNet body offers to fold: every block convolution followed by a norm and a ReLU (two per
    /// basic block, three per bottleneck), never the stem, and in ResNeXt not the grouped 3×3 ones; apart from them
    /// each downsample (a 1×1 convolution: ResNet18's layers 2-4, a bottleneck body's four layers).</summary>
    [Theory]
    [InlineData(new[] { 2, 2, 2, 2 }, false, 1, 16, 3)]
    [InlineData(new[] { 3, 4, 6, 3 }, true, 1, 48, 4)]
    [InlineData(new[] { 3, 4, 6, 3 }, true, 32, 32, 4)]
    public void TheBodyOffersItsUngroupedBlockConvolutions(int[] layers, bool bottleneck, long groups, int expected,
        int downsamples)
    {
        using var body = new ResNetBody(layers, bottleneck, groups, widthPerGroup: groups == 1 ? 64 : 4);
        var down = body.DownsampleJoins.ToList();
        Assert.Equal(downsamples, down.Count);
        Assert.All(down, p => Assert.Equal([1L, 1L], p.Conv.kernel_size));
        var pairs = body.ConvNormPairs.ToList();
        Assert.Equal(expected, pairs.Count);
        Assert.Empty(pairs.Intersect(down.Select(d => (d.Conv, d.Norm))));
        // a downsample joins its block's last convolution, one of the pairs
        Assert.All(down, d => Assert.Contains((d.Last, d.LastNorm), pairs));
        Assert.Equal(downsamples, down.Select(d => d.Last).Distinct().Count());
        Assert.All(pairs, p => Assert.Equal(1, p.Conv.groups));
        Assert.All(pairs, p => Assert.NotEqual(3, p.Conv.in_channels));
    }

    [Fact]
    public void WithoutANormTheFoldIsTheConvolutionItself()
    {
        using var scope = NewDisposeScope();
        using var conv = nn.Conv2d(3, 5, 1, bias: true);
        var (weight, bias) = FrozenBatchNorm2d.Fold(conv, null);
        Assert.True((weight == conv.weight!.to(ScalarType.Float64)).all().item<bool>());
        Assert.True((bias == conv.bias!.to(ScalarType.Float64)).all().item<bool>());
    }
}
