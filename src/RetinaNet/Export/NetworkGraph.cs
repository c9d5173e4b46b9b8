using RetinaNet.Model;
using TorchSharp.Modules;
using static RetinaNet.Export.GraphBuilder;
using static TorchSharp.torch;
using DataType = Onnx.TensorProto.Types.DataType;

namespace RetinaNet.Export;

/// <summary>Emits the network (backbone bodies, FPNs, heads) as ONNX nodes, following each module's forward exactly;
/// names as <see cref="OnnxNames"/>. Weights and activations are in <paramref name="precision"/> (float or float16).</summary>
sealed class NetworkGraph(GraphBuilder graph, RetinaNetModel model, DataType precision)
{
    readonly Dictionary<nn.Module, string> paths = model.named_modules()
        .ToDictionary(m => m.module, m => m.name, new ModuleIdentity());

    sealed class ModuleIdentity : IEqualityComparer<nn.Module>
    {
        public bool Equals(nn.Module? a, nn.Module? b) => ReferenceEquals(a, b);
        public int GetHashCode(nn.Module m) => System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(m);
    }

    /// <summary>Head outputs per level (logits and box deltas, in <c>precision</c>) for a normalised input.</summary>
    public (string[] ClassLogits, string[] BoxDeltas) Heads(string input)
    {
        var levels = model.BackboneModules.SelectMany(b => Fpn(b.Backbone, input)).ToArray();
        var heads = Children(model);
        var cls = levels.Select((l, i) => Head((Sequential)heads["cls_head"], l, i)).ToArray();
        var box = levels.Select((l, i) => Head((Sequential)heads["box_head"], l, i)).ToArray();
        return (cls, box);
    }

    string[] Fpn(Fpn fpn, string input)
    {
        var m = Children(fpn);
        var c = Body((FeatureBody)m["features"], input);
        string Layer(string name, string x) => Conv(x, (Conv2d)m[name], null);
        var p5 = Layer("lateral5", c[2]);
        var p4 = graph.Node("Add", $"{paths[fpn]}.p4", [Layer("lateral4", c[1]), Upsample(p5, $"{paths[fpn]}.p5.upsample")]);
        var p3 = graph.Node("Add", $"{paths[fpn]}.p3", [Layer("lateral3", c[0]), Upsample(p4, $"{paths[fpn]}.p4.upsample")]);
        var p6 = Layer("pyramid6", c[2]);
        var p7 = Layer("pyramid7", graph.Node("Relu", $"{paths[fpn]}.p6.relu", [p6]));
        return [Layer("smooth3", p3), Layer("smooth4", p4), Layer("smooth5", p5), p6, p7];
    }

    // Nearest 2x (inputs are multiples of 128, so every level is exactly twice the next): out[i] = in[floor(i / 2)].
    string Upsample(string input, string name) =>
        graph.Node("Resize", name, [input, "", Constant("fpn.upsample.scales", [1f, 1f, 2f, 2f])],
            Attr("mode", "nearest"), Attr("coordinate_transformation_mode", "asymmetric"), Attr("nearest_mode", "floor"));

    string[] Body(FeatureBody body, string input) => body switch
    {
        ResNetBody resnet => ResNet(resnet, input),
        MobileNetV2Body mobile => MobileNetV2(mobile, input),
        _ => throw new NotSupportedException($"ONNX export of {body.GetType().Name} backbones"),
    };

    string[] ResNet(ResNetBody body, string input)
    {
        var m = Children(body);
        var x = Relu(Conv(input, (Conv2d)m["conv1"], (FrozenBatchNorm2d)m["bn1"]));
        var pool = (MaxPool2d)m["maxpool"];
        x = graph.Node("MaxPool", paths[pool], [x], Attr("kernel_shape", pool.kernel_size), Attr("strides", pool.stride ?? pool.kernel_size),
            Attr("pads", Pads(pool.padding ?? [0, 0])));
        var outputs = new List<string>();
        foreach (var layer in new[] { "layer1", "layer2", "layer3", "layer4" })
        {
            foreach (var (_, block) in m[layer].named_children()) x = ResidualBlock(block, x);
            if (layer != "layer1") outputs.Add(x);
        }
        return [.. outputs];
    }

    // BasicBlock (conv1/bn1, conv2/bn2) and Bottleneck (.. conv3/bn3): ReLU after all but the last, then the identity
    // (or downsample) is added and a ReLU follows.
    string ResidualBlock(nn.Module block, string input)
    {
        var m = Children(block);
        var y = input;
        int count = m.Keys.Count(k => k.StartsWith("conv", StringComparison.Ordinal));
        for (int i = 1; i <= count; i++)
        {
            y = Conv(y, (Conv2d)m[$"conv{i}"], (FrozenBatchNorm2d)m[$"bn{i}"]);
            if (i < count) y = Relu(y);
        }
        var identity = input;
        if (m.TryGetValue("downsample", out var down))
        {
            var d = Children(down);
            identity = Conv(input, (Conv2d)d["0"], (FrozenBatchNorm2d)d["1"]);
        }
        var sum = graph.Node("Add", $"{paths[block]}.add", [y, identity]);
        return graph.Node("Relu", $"{paths[block]}.relu", [sum]);
    }

    string[] MobileNetV2(MobileNetV2Body body, string input)
    {
        var features = Children(body)["features"];
        var outputs = new List<string>();
        var x = input;
        int index = 0;
        foreach (var (_, block) in features.named_children())
        {
            x = block switch
            {
                InvertedResidual inverted => InvertedResidual(inverted, x),
                Sequential convNormRelu6 => ConvNormRelu6(convNormRelu6, x),
                _ => throw new NotSupportedException($"ONNX export of MobileNetV2 block {block.GetType().Name}"),
            };
            if (MobileNetV2Body.OutputBlocks.Contains(index++)) outputs.Add(x);
        }
        return [.. outputs];
    }

    string InvertedResidual(InvertedResidual block, string input)
    {
        var layers = Children(Children(block)["conv"]).Values.ToList();
        var y = input;
        foreach (var stage in layers.OfType<Sequential>()) y = ConvNormRelu6(stage, y);
        y = Conv(y, layers.OfType<Conv2d>().Single(), layers.OfType<FrozenBatchNorm2d>().Single());
        return block.Residual ? graph.Node("Add", $"{paths[block]}.add", [y, input]) : y;
    }

    string ConvNormRelu6(Sequential stage, string input)
    {
        var m = Children(stage);
        var y = Conv(input, (Conv2d)m["0"], (FrozenBatchNorm2d)m["1"]);
        return graph.Node("Clip", $"{paths[stage]}.relu6", [y, Constant("relu6.min", [0f], scalar: true), Constant("relu6.max", [6f], scalar: true)]);
    }

    string Head(Sequential head, string input, int level)
    {
        var x = input;
        foreach (var (_, layer) in head.named_children())
            x = layer switch
            {
                Conv2d conv => Conv(x, conv, null, level),
                ReLU => graph.Node("Relu", OnnxNames.AtLevel(paths[layer], level), [x]),
                _ => throw new NotSupportedException($"ONNX export of head layer {layer.GetType().Name}"),
            };
        return x;
    }

    /// <summary>Conv (+ folded frozen batch norm); a head conv (level given) shares its initializers across levels.</summary>
    string Conv(string input, Conv2d conv, FrozenBatchNorm2d? norm, int? level = null)
    {
        string path = paths[conv];
        string weight = OnnxNames.Weight(path), bias = OnnxNames.Bias(path);
        if (!graph.HasValue(weight))
        {
            var (w, b) = ConvFolding.Fold(conv, norm);
            using (w) using (b)
            {
                graph.Initializer(weight, OnnxTensors.From(w, precision));
                graph.Initializer(bias, OnnxTensors.From(b, precision));
            }
        }
        string name = level is int l ? OnnxNames.AtLevel(path, l) : path;
        return graph.Node("Conv", name, [input, weight, bias],
            Attr("kernel_shape", conv.kernel_size), Attr("strides", conv.stride), Attr("pads", Pads(conv.padding ?? [0, 0])),
            Attr("dilations", conv.dilation), Attr("group", conv.groups));
    }

    string Relu(string input) => graph.Node("Relu", $"{input}.relu", [input]);

    string Constant(string name, float[] values, bool scalar = false) =>
        graph.HasValue(name) ? name : graph.Initializer(name, scalar ? OnnxTensors.Scalar(values[0], precision) : OnnxTensors.From(values));

    static long[] Pads(long[] padding) => [.. padding, .. padding];

    static Dictionary<string, nn.Module> Children(nn.Module module) =>
        module.named_children().ToDictionary(c => c.name, c => c.module, StringComparer.Ordinal);
}
