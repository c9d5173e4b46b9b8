using RetinaNet.Data.Loading;
using RetinaNet.Inference;
using RetinaNet.Model;
using TorchSharp;
using Xunit;
using static RetinaNet.Native.Scalars;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Model;

/// <summary>The stem rearranged over 2×2 blocks (<see cref="SpaceToDepthStem"/>) and the one-pass input
/// (<see cref="InputKernel"/>), against libtorch's 7×7 convolution and <see cref="DeviceBatch.From"/>'s
/// passes.</summary>
public class SpaceToDepthStemTests
{
    /// <summary>The blocks by tensor ops, written out here: two blocks (4 pixels) of zeros before, one (2 pixels)
    /// after, block channel (dy·2 + dx)·3 + c, zeros in channels 12..15.</summary>
    static Tensor ReferenceBlocks(Tensor x)
    {
        long b = x.shape[0], h = x.shape[2] + 6, w = x.shape[3] + 6;
        var padded = nn.functional.pad(x, [4, 2, 4, 2]);
        var blocks = padded.view(b, 3, h / 2, 2, w / 2, 2).permute(0, 3, 5, 1, 2, 4).reshape(b, 12, h / 2, w / 2);
        return nn.functional.pad(blocks, [0, 0, 0, 0, 0, 4]);
    }

    /// <summary>In float64 on the CPU: the packed 4×4 kernel over the blocks gives the 7×7 stride-2 convolution, at
    /// the border too, for heights and widths that are and are not multiples of 4.</summary>
    [Theory]
    [InlineData(10, 14)]
    [InlineData(8, 6)]
    [InlineData(2, 2)]
    public void PackedKernelOverBlocksIsTheStemConvolution(int h, int w)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(5);
        var x = randn([2, 3, h, w], ScalarType.Float64, generator: g);
        var weight = randn([5, 3, 7, 7], ScalarType.Float64, generator: g);
        var expected = nn.functional.conv2d(x, weight, strides: [2, 2], padding: [3, 3]);
        var packed = SpaceToDepthStem.PackWeight(weight);
        Assert.Equal(new long[] { 5, 16, 4, 4 }, packed.shape);
        var ours = nn.functional.conv2d(ReferenceBlocks(x), packed);
        Assert.Equal(expected.shape, ours.shape);
        double error = (ours - expected).abs().max().item<double>();
        Assert.True(error < 1e-10, $"max difference {error}");
    }

    /// <summary>The block kernel against the tensor-op blocks of the same NHWC input: the same bits.</summary>
    [GpuTheory]
    [InlineData(ScalarType.BFloat16, 2, 16, 24)]
    [InlineData(ScalarType.Float16, 1, 6, 10)]
    public void BlockKernelEqualsTheTensorOpBlocks(ScalarType dtype, int b, int h, int w)
    {
        using var scope = NewDisposeScope();
        var x = randn(b, 3, h, w, generator: new Generator(8)).to(dtype);
        var ours = SpaceToDepthStem.Blocks(Layouts.NhwcCopy(x.cuda()));
        Assert.True(Layouts.IsDenseNhwc(ours));
        var expected = ReferenceBlocks(x.to(ScalarType.Float32));
        Assert.Equal(expected.shape, ours.shape);
        Assert.True(ours.cpu().to(ScalarType.Float32).eq(expected).all().item<bool>(), "same values");
    }

    /// <summary>The input kernel against <see cref="DeviceBatch.From"/>, the cast and the NHWC copy it replaces:
    /// the same bits (zeros' signs included) for images of different sizes in one padded batch.</summary>
    [GpuTheory]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.Float32)]
    public void InputKernelEqualsLibtorchsPasses(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(3);
        var sizes = new[] { (40, 70), (64, 33), (17, 96) };
        using var host = HostBatch.Collate(sizes.Select((s, i) => new PreparedImage(i, i,
            new RetinaNet.Data.Transforms.ImageWithBoxes(
                randint(0, 256, [3, s.Item1, s.Item2], generator: g).to(ScalarType.Byte), [], []), s.Item2, s.Item1))
            .ToList(), [false, false, false], 32, pin: true);
        using var batch = DeviceBatch.From(host, CUDA);
        var expected = Layouts.NhwcCopy(batch.Images.to(dtype));
        var ours = InputKernel.Run(host.Pixels.cuda(), host.Sizes, dtype);
        Assert.True(Layouts.IsDenseNhwc(ours));
        Assert.Equal(expected.shape, ours.shape);
        // float32 holds every bf16/fp16 value exactly; the sign bit tells -0 from 0
        var (a, e) = (ours.to(ScalarType.Float32).cpu(), expected.to(ScalarType.Float32).cpu());
        Assert.True(a.eq(e).all().item<bool>(), $"{a.ne(e).sum().item<long>()} values differ");
        Assert.True(a.signbit().eq(e.signbit()).all().item<bool>(), "the zeros' signs differ");
        Assert.True(expected.eq(Of(0)).any().item<bool>() && expected.lt(Of(0)).any().item<bool>(),
            "padding and negatives");
    }
}
