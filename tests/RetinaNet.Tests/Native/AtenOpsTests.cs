using RetinaNet.Model;
using RetinaNet.Native;
using Xunit;
using static RetinaNet.Native.Scalars;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Native;

/// <summary>libtorch operators called through their C++ dispatcher entry points (<see cref="AtenOps"/>). The plain
/// convolution runs on the CPU, so the calling convention (returned tensor, optional bias, integer arrays, the
/// groups' SymInt) is checked here against a convolution computed by hand; the cuDNN-fused ones on the GPU.</summary>
public class AtenOpsTests
{
    [Fact]
    public void EveryEntryPointIsExported() => Assert.True(AtenOps.Available, AtenOps.MissingReason);

    /// <summary>A 2-channel 3×4 input, one 2×2 filter per output channel with its bias, stride 1, no padding: each
    /// output is the sum of the window times the filter, written out below.</summary>
    [Fact]
    public void ConvolutionEqualsOneComputedByHand()
    {
        using var scope = NewDisposeScope();
        var x = Arange(24, ScalarType.Float32).reshape(1, 2, 3, 4);
        var w = tensor(new float[] { 1, 0, 0, -1, 2, 0, 0, 0, /* channel 2: */ 0, 1, 1, 0, 0, 0, 0, 1 })
            .reshape(2, 2, 2, 2);
        var b = tensor(new float[] { 0.5f, -1f });
        using var y = AtenOps.Convolution(x, w, b, [1, 1], [0, 0], [1, 1], 1);
        Assert.Equal([1L, 2, 2, 3], y.shape);
        var expected = new float[2 * 2 * 3];
        for (int o = 0; o < 2; o++)
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 3; j++)
                {
                    float sum = o == 0 ? 0.5f : -1f;
                    for (int c = 0; c < 2; c++)
                        for (int u = 0; u < 2; u++)
                            for (int v = 0; v < 2; v++)
                                sum += (c * 12 + (i + u) * 4 + (j + v)) * w[o, c, u, v].item<float>();
                    expected[(o * 2 + i) * 3 + j] = sum;
                }
        Assert.Equal(expected, y.data<float>().ToArray());
    }

    /// <summary>Stride, padding, dilation, groups and an absent bias each reach the operator: the result equals
    /// TorchSharp's conv2d (libtorch's own binding) for every combination, and the returned tensor is an ordinary
    /// TorchSharp tensor (disposed with its scope, usable afterwards while kept).</summary>
    [Theory]
    [InlineData(1, 0, 1, 1, true)]
    [InlineData(2, 1, 1, 1, false)]
    [InlineData(1, 2, 2, 1, true)]
    [InlineData(2, 1, 1, 2, true)]
    [InlineData(1, 1, 1, 4, false)]
    public void ConvolutionPassesEveryArgument(long stride, long padding, long dilation, long groups, bool withBias)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(7);
        var x = randn([2, 4, 9, 11], generator: g);
        var w = randn([8, 4 / groups, 3, 3], generator: g);
        var b = withBias ? randn([8], generator: g) : null;
        var ours = AtenOps.Convolution(x, w, b, [stride, stride], [padding, padding], [dilation, dilation], groups);
        var reference = nn.functional.conv2d(x, w, b, [stride, stride], [padding, padding], [dilation, dilation],
            groups);
        Assert.Equal(reference.shape, ours.shape);
        Assert.Equal(AtenOps.OutputShape(x, w, [stride, stride], [padding, padding], [dilation, dilation]),
            ours.shape);
        Assert.True(ours.allclose(reference, rtol: 1e-5, atol: 1e-5));
    }

    [Fact]
    public void ReturnedTensorsBelongToTheDisposeScope()
    {
        var x = ones(1, 1, 3, 3);
        var w = ones(1, 1, 1, 1);
        Tensor kept, dropped;
        using (NewDisposeScope())
        {
            dropped = AtenOps.Convolution(x, w, null, [1, 1], [0, 0], [1, 1], 1);
            kept = AtenOps.Convolution(x, w, null, [1, 1], [0, 0], [1, 1], 1).MoveToOuterDisposeScope();
        }
        Assert.True(dropped.IsInvalid);
        Assert.Equal(9f, kept.sum().item<float>());
        kept.Dispose(); x.Dispose(); w.Dispose();
    }

    [Fact]
    public void WrongShapesAreRefusedBeforeTheCall()
    {
        using var scope = NewDisposeScope();
        var x = ones(1, 3, 4, 4);
        Assert.Throws<ArgumentException>(() => AtenOps.Convolution(x, ones(2, 2, 1, 1), null, [1, 1], [0, 0], [1, 1],
            1));
        Assert.Throws<ArgumentException>(() => AtenOps.Convolution(x, ones(2, 3, 1, 1), ones(3), [1, 1], [0, 0],
            [1, 1], 1));
        Assert.Throws<ArgumentException>(() => AtenOps.Convolution(x, ones(2, 3, 1, 1), null, [1], [0, 0], [1, 1], 1));
        // what libtorch would throw on (an abort from here): stride 0, negative padding, a kernel larger than the
        // input, a bias of another dtype, integer tensors
        Assert.Throws<ArgumentException>(() => AtenOps.Convolution(x, ones(2, 3, 1, 1), null, [0, 1], [0, 0], [1, 1],
            1));
        Assert.Throws<ArgumentException>(() => AtenOps.Convolution(x, ones(2, 3, 1, 1), null, [1, 1], [-1, 0],
            [1, 1], 1));
        Assert.Throws<ArgumentException>(() => AtenOps.Convolution(x, ones(2, 3, 5, 5), null, [1, 1], [0, 0], [1, 1],
            1));
        Assert.Throws<ArgumentException>(() => AtenOps.Convolution(x, ones(2, 3, 1, 1), ones(2, ScalarType.Float64),
            [1, 1], [0, 0], [1, 1], 1));
        Assert.Throws<ArgumentException>(() => AtenOps.Convolution(ones(1, 3, 4, 4, ScalarType.Int64),
            ones(2, 3, 1, 1, ScalarType.Int64), null, [1, 1], [0, 0], [1, 1], 1));
        // the same kernel with enough padding fits
        Assert.Equal([1L, 2, 4, 4], AtenOps.Convolution(x, ones(2, 3, 5, 5), null, [1, 1], [2, 2], [1, 1], 1).shape);
        // the fused operators are CUDA only: a CPU tensor is refused, never passed on to throw inside libtorch
        Assert.False(AtenOps.CanFuse(x, ones(2, 3, 1, 1), ones(2)));
        Assert.Throws<ArgumentException>(() => AtenOps.ConvolutionRelu(x, ones(2, 3, 1, 1), ones(2), [1, 1], [0, 0],
            [1, 1], 1));
    }

    /// <summary>cuDNN's fused operators against the separate ops they replace, in bf16 channels-last as inference
    /// runs them (relative to the largest output: bf16 rounding of the fused sum, no more).</summary>
    [GpuFact]
    public void FusedConvolutionsEqualConvolutionBiasResidualAndRelu()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(3); // drawn on the CPU (TorchSharp 0.107 makes a CPU generator here), then moved
        // ungrouped only: the fused path is not asked to run grouped convolutions (FusedConvolution)
        foreach (var (stride, size) in new (long, long)[] { (1, 3), (2, 3), (1, 1) })
        {
            var x = Layouts.NhwcCopy(randn([2, 16, 20, 24], generator: g).cuda().to(ScalarType.BFloat16));
            var w = Layouts.NhwcCopy((randn([32, 16, size, size], generator: g).cuda() * Of(0.1))
                .to(ScalarType.BFloat16));
            var b = randn([32], generator: g).cuda().to(ScalarType.BFloat16);
            long[] s = [stride, stride], p = [size / 2, size / 2], d = [1, 1];
            var conv = nn.functional.conv2d(x.to(ScalarType.Float32), w.to(ScalarType.Float32), null, s, p, d, 1)
                .Plus(b.to(ScalarType.Float32).view(1, -1, 1, 1));
            var z = Layouts.NhwcCopy(randn(conv.shape, generator: g).cuda().to(ScalarType.BFloat16));
            using (no_grad())
            {
                var relu = AtenOps.ConvolutionRelu(x, w, b, s, p, d, 1);
                var addRelu = AtenOps.ConvolutionAddRelu(x, w, z, b, s, p, d, 1);
                var sum = conv.Plus(z.to(ScalarType.Float32));
                foreach (var (got, want) in new[] { (relu, conv.relu()), (addRelu, sum.relu()) })
                {
                    Assert.Equal(want.shape, got.shape);
                    double err = (got.to(ScalarType.Float32) - want).abs().max().item<float>()
                        / want.abs().max().item<float>();
                    Assert.True(err < 0.02, $"stride {stride}, {size}x{size}: relative difference {err}");
                }
            }
        }
    }
}
