using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RetinaNet.Model;

/// <summary>torchvision's InvertedResidual: names conv.0.0 (expand), conv.N (depthwise), then the linear 1x1 and its
/// norm.</summary>
sealed class InvertedResidual : nn.Module<Tensor, Tensor>, IOnnxExportable<string>
{
    readonly Sequential conv;
    /// <summary>Whether the input is added to the output (stride 1, same channels).</summary>
    readonly bool residual;

    public InvertedResidual(long inp, long oup, long stride, long expandRatio) : base(nameof(InvertedResidual))
    {
        long hidden = inp * expandRatio;
        residual = stride == 1 && inp == oup;
        var layers = new List<(string, nn.Module<Tensor, Tensor>)>();
        if (expandRatio != 1) layers.Add((layers.Count.ToString(),
            MobileNetV2Body.ConvNormRelu6(inp, hidden, 1, 1, 1)));
        layers.Add((layers.Count.ToString(), MobileNetV2Body.ConvNormRelu6(hidden, hidden, 3, stride, hidden)));
        layers.Add((layers.Count.ToString(), nn.Conv2d(hidden, oup, 1, bias: false)));
        layers.Add((layers.Count.ToString(), new FrozenBatchNorm2d(oup)));
        conv = nn.Sequential(layers);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        if (!residual) return conv.forward(x);
        using var scope = NewDisposeScope();
        return conv.forward(x).Plus_(x).MoveToOuterDisposeScope();
    }

    public string EmitOnnx(IOnnxEmitter g, string input)
    {
        var layers = conv.children().ToList();
        var y = layers.OfType<Sequential>()
            .Aggregate(input, (x, stage) => MobileNetV2Body.EmitConvNormRelu6(g, stage, x));
        y = g.Conv(y, layers.OfType<Conv2d>().Single(), layers.OfType<FrozenBatchNorm2d>().Single());
        return residual ? g.Add(y, input, $"{g.PathOf(this)}.add") : y;
    }
}

/// <summary>MobileNetV2 features 0..17 (torchvision names <c>features.N...</c>); C3/C4/C5 after blocks 6, 13, 17
/// (32, 96, 320 channels) as ODTK's MobileNetV2FPN. Block 18 and the classifier are not built.</summary>
public sealed class MobileNetV2Body : FeatureBody
{
    readonly Sequential features;
    /// <summary>Blocks whose outputs are C3, C4, C5.</summary>
    static readonly int[] OutputBlocks = [6, 13, 17];

    internal static Sequential ConvNormRelu6(long inp, long oup, long kernel, long stride, long groups) =>
        nn.Sequential(
            ("0", nn.Conv2d(inp, oup, kernel, stride: stride, padding: (kernel - 1) / 2, groups: groups, bias: false)),
            ("1", new FrozenBatchNorm2d(oup)),
            ("2", nn.ReLU6()));

    internal static string EmitConvNormRelu6(IOnnxEmitter g, Sequential stage, string input)
    {
        var m = stage.children().ToArray();
        return g.Relu6(g.Conv(input, (Conv2d)m[0], (FrozenBatchNorm2d)m[1]), $"{g.PathOf(stage)}.relu6");
    }

    public MobileNetV2Body() : base("MobileNetV2")
    {
        // (expansion t, channels c, repeats n, stride s) from the paper / torchvision.
        (long t, long c, int n, long s)[] settings =
            [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];
        var blocks = new List<(string, nn.Module<Tensor, Tensor>)> { ("0", ConvNormRelu6(3, 32, 3, 2, 1)) };
        long input = 32;
        foreach (var (t, c, n, s) in settings)
            for (int i = 0; i < n; i++)
            {
                blocks.Add((blocks.Count.ToString(), new InvertedResidual(input, c, i == 0 ? s : 1, t)));
                input = c;
            }
        features = nn.Sequential(blocks);
        RegisterComponents();
    }

    public override long[] Channels => [32, 96, 320];
    public override string[] UnusedTorchvisionPrefixes => ["features.18.", "classifier."];

    /// <summary>Blocks 0..3: everything before the first stride-8 block.</summary>
    public override IEnumerable<nn.Module> Stem => features.children().Take(4);

    public override Tensor[] forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var outputs = new List<Tensor>(3);
        var y = x;
        int index = 0;
        foreach (var block in features.children())
        {
            y = ((nn.Module<Tensor, Tensor>)block).forward(y);
            if (OutputBlocks.Contains(index)) outputs.Add(y);
            index++;
        }
        return outputs.Select(o => o.MoveToOuterDisposeScope()).ToArray();
    }

    public override string[] EmitOnnx(IOnnxEmitter g, string input)
    {
        var y = input;
        var outputs = features.children().Select(block => y = block is InvertedResidual inverted
            ? inverted.EmitOnnx(g, y) : EmitConvNormRelu6(g, (Sequential)block, y)).ToArray();
        return [.. OutputBlocks.Select(i => outputs[i])];
    }
}
