using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RetinaNet.Model;

/// <summary>A block's convolutions each followed by a frozen norm and a ReLU (what <see cref="FusedConvolution"/>
/// folds and runs as one call with the bias, residual and ReLU after it), and its downsample joined to its last
/// convolution (<see cref="FoldedJoin"/>), where it has one.</summary>
interface IConvNormPairs
{
    IEnumerable<(Conv2d, FrozenBatchNorm2d)> ConvNormPairs { get; }
    IEnumerable<DownsampleJoin> DownsampleJoins { get; }
}

/// <summary>A residual block's downsample (a 1×1 convolution and its frozen norm, no ReLU) and the block's last
/// convolution and norm, whose output the downsample's is added to before the ReLU.</summary>
public readonly record struct DownsampleJoin(Conv2d Conv, FrozenBatchNorm2d Norm, Conv2d Last,
    FrozenBatchNorm2d LastNorm);

// Convolutions run through call(), not forward(): call() runs forward hooks, which INT8 calibration uses to observe
// every convolution's input (Export/Quantization/ActivationObserver).

/// <summary>torchvision's BasicBlock (ResNet18/34), with frozen batch norm.</summary>
sealed class BasicBlock : nn.Module<Tensor, Tensor>, IOnnxExportable<string>, IConvNormPairs
{
    public const int Expansion = 1;
    readonly Conv2d conv1, conv2;
    readonly FrozenBatchNorm2d bn1, bn2;
    readonly Sequential? downsample;

    public BasicBlock(long inplanes, long planes, long stride, Sequential? downsample) : base(nameof(BasicBlock))
    {
        conv1 = nn.Conv2d(inplanes, planes, 3, stride: stride, padding: 1, bias: false);
        bn1 = new FrozenBatchNorm2d(planes);
        conv2 = nn.Conv2d(planes, planes, 3, padding: 1, bias: false);
        bn2 = new FrozenBatchNorm2d(planes);
        this.downsample = downsample;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = bn1.Convolve(conv1, x, relu: true);
        return Join(bn2, conv2, y, x, downsample).MoveToOuterDisposeScope();
    }

    public IEnumerable<(Conv2d, FrozenBatchNorm2d)> ConvNormPairs => [(conv1, bn1), (conv2, bn2)];
    public IEnumerable<DownsampleJoin> DownsampleJoins => Joins(downsample, conv2, bn2);

    // a downsample is torchvision's Sequential(conv, norm)
    internal static IEnumerable<DownsampleJoin> Joins(Sequential? downsample, Conv2d last, FrozenBatchNorm2d norm) =>
        downsample?.children().ToArray() is [Conv2d conv, FrozenBatchNorm2d down] ? [new(conv, down, last, norm)] : [];

    // the end of a block: ReLU(norm(last(y)) + identity), the identity x or its downsample; as one join where
    // inference joined them (FoldedJoin), else the downsample's Sequential and the last convolution's own call
    internal static Tensor Join(FrozenBatchNorm2d norm, Conv2d last, Tensor y, Tensor x, Sequential? downsample) =>
        norm.TryJoined(y, x) ?? norm.Convolve(last, y, relu: true, residual: downsample?.forward(x) ?? x);

    public string EmitOnnx(IOnnxEmitter g, string input) =>
        EmitJoin(g, this, g.Conv(g.Relu(g.Conv(input, conv1, bn1)), conv2, bn2), input, downsample);

    // The end of a residual block: the identity (or its downsample) added to the branch, then a ReLU.
    internal static string EmitJoin(IOnnxEmitter g, nn.Module block, string branch, string input, Sequential? down)
    {
        var identity = down is null ? input
            : g.Conv(input, (Conv2d)down.children().First(), (FrozenBatchNorm2d)down.children().Last());
        return g.Relu(g.Add(branch, identity, $"{g.PathOf(block)}.add"), $"{g.PathOf(block)}.relu");
    }
}

/// <summary>torchvision's Bottleneck (ResNet50+, ResNeXt: stride on the 3x3 conv, "v1.5"), frozen batch
/// norm.</summary>
sealed class Bottleneck : nn.Module<Tensor, Tensor>, IOnnxExportable<string>, IConvNormPairs
{
    public const int Expansion = 4;
    readonly Conv2d conv1, conv2, conv3;
    readonly FrozenBatchNorm2d bn1, bn2, bn3;
    readonly Sequential? downsample;

    public Bottleneck(long inplanes, long planes, long stride, Sequential? downsample, long groups, long widthPerGroup)
        : base(nameof(Bottleneck))
    {
        long width = planes * widthPerGroup / 64 * groups;
        conv1 = nn.Conv2d(inplanes, width, 1, bias: false);
        bn1 = new FrozenBatchNorm2d(width);
        conv2 = nn.Conv2d(width, width, 3, stride: stride, padding: 1, groups: groups, bias: false);
        bn2 = new FrozenBatchNorm2d(width);
        conv3 = nn.Conv2d(width, planes * Expansion, 1, bias: false);
        bn3 = new FrozenBatchNorm2d(planes * Expansion);
        this.downsample = downsample;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = bn1.Convolve(conv1, x, relu: true);
        y = bn2.Convolve(conv2, y, relu: true);
        return BasicBlock.Join(bn3, conv3, y, x, downsample).MoveToOuterDisposeScope();
    }

    public IEnumerable<(Conv2d, FrozenBatchNorm2d)> ConvNormPairs => [(conv1, bn1), (conv2, bn2), (conv3, bn3)];
    public IEnumerable<DownsampleJoin> DownsampleJoins => BasicBlock.Joins(downsample, conv3, bn3);

    public string EmitOnnx(IOnnxEmitter g, string input)
    {
        var y = g.Relu(g.Conv(g.Relu(g.Conv(input, conv1, bn1)), conv2, bn2));
        return BasicBlock.EmitJoin(g, this, g.Conv(y, conv3, bn3), input, downsample);
    }
}

/// <summary>ResNet / ResNeXt body with torchvision's parameter names (conv1, bn1, layer1.0.conv1, ...),
/// returning C3..C5. No fc: detection never uses it.</summary>
public sealed class ResNetBody : FeatureBody
{
    readonly Conv2d conv1;
    readonly FrozenBatchNorm2d bn1;
    readonly MaxPool2d maxpool;
    readonly Sequential layer1, layer2, layer3, layer4;
    readonly long[] channels;
    SpaceToDepthStem? packedStem;

    public override IEnumerable<nn.Module> Stem => [conv1, layer1];

    const int PoolKernel = 3, PoolStride = 2, PoolPadding = 1;

    public ResNetBody(int[] layers, bool bottleneck, long groups = 1, long widthPerGroup = 64) : base("ResNet")
    {
        long expansion = bottleneck ? Bottleneck.Expansion : BasicBlock.Expansion;
        long inplanes = 64;
        Sequential MakeLayer(long planes, int blocks, long stride)
        {
            Sequential? down = null;
            if (stride != 1 || inplanes != planes * expansion)
                down = nn.Sequential(
                    ("0", nn.Conv2d(inplanes, planes * expansion, 1, stride: stride, bias: false)),
                    ("1", new FrozenBatchNorm2d(planes * expansion)));
            var list = new List<(string, nn.Module<Tensor, Tensor>)>();
            for (int i = 0; i < blocks; i++)
            {
                nn.Module<Tensor, Tensor> block = bottleneck
                    ? new Bottleneck(inplanes, planes, i == 0 ? stride : 1, i == 0 ? down : null, groups, widthPerGroup)
                    : new BasicBlock(inplanes, planes, i == 0 ? stride : 1, i == 0 ? down : null);
                list.Add((i.ToString(), block));
                inplanes = planes * expansion;
            }
            return nn.Sequential(list);
        }
        conv1 = nn.Conv2d(3, 64, 7, stride: 2, padding: 3, bias: false);
        bn1 = new FrozenBatchNorm2d(64);
        maxpool = nn.MaxPool2d(PoolKernel, stride: PoolStride, padding: PoolPadding);
        layer1 = MakeLayer(64, layers[0], 1);
        layer2 = MakeLayer(128, layers[1], 2);
        layer3 = MakeLayer(256, layers[2], 2);
        layer4 = MakeLayer(512, layers[3], 2);
        channels = [128 * expansion, 256 * expansion, 512 * expansion];
        RegisterComponents();
    }

    public override long[] Channels => channels;
    public override string[] UnusedTorchvisionPrefixes => ["fc."];

    // what cuDNN's fused engines take: not the stem (they want channels in multiples of 8, its input has 3), not
    // ResNeXt's grouped convolutions
    public override IEnumerable<(Conv2d Conv, FrozenBatchNorm2d Norm)> ConvNormPairs =>
        Blocks.SelectMany(b => b.ConvNormPairs).Where(p => p.Item1.groups == 1);

    public override IEnumerable<DownsampleJoin> DownsampleJoins => Blocks.SelectMany(b => b.DownsampleJoins);

    IEnumerable<IConvNormPairs> Blocks =>
        new[] { layer1, layer2, layer3, layer4 }.SelectMany(l => l.children()).OfType<IConvNormPairs>();

    public override void PrepareStem(ScalarType dtype, bool channelsLast)
    {
        packedStem?.Dispose();
        packedStem = Kernels.SpaceToDepthStem && channelsLast && dtype is ScalarType.BFloat16 or ScalarType.Float16
            && SpaceToDepthStem.Fits(conv1) ? new SpaceToDepthStem(conv1, bn1, dtype) : null;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) packedStem?.Dispose();
        base.Dispose(disposing);
    }

    public override Tensor[] forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        // the packed stem holds the norm as it was folded: a calibrating norm takes the module path
        var stem = (bn1.Calibrating ? null : packedStem?.TryRun(x)) ?? bn1.Apply(conv1.call(x), relu: true);
        var y = Pool(stem);
        y = layer1.forward(y);
        var c3 = layer2.forward(y);
        var c4 = layer3.forward(c3);
        var c5 = layer4.forward(c4);
        return [c3.MoveToOuterDisposeScope(), c4.MoveToOuterDisposeScope(), c5.MoveToOuterDisposeScope()];
    }

    Tensor Pool(Tensor x) => Kernels.MaxPool && MaxPoolKernel.CanRun(x)
        ? MaxPoolKernel.Run(x, PoolKernel, PoolStride, PoolPadding) : maxpool.forward(x);

    public override string[] EmitOnnx(IOnnxEmitter g, string input)
    {
        var y = Blocks(layer1, g.MaxPool(g.Relu(g.Conv(input, conv1, bn1)), maxpool));
        var c3 = Blocks(layer2, y);
        var c4 = Blocks(layer3, c3);
        return [c3, c4, Blocks(layer4, c4)];

        string Blocks(Sequential layer, string from) =>
            layer.children().Aggregate(from, (x, block) => ((IOnnxExportable<string>)block).EmitOnnx(g, x));
    }
}
