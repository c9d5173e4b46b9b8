using Onnx;
using RetinaNet.Model;
using TorchSharp.Modules;
using static RetinaNet.Export.GraphBuilder;
using static TorchSharp.torch;
using DataType = Onnx.TensorProto.Types.DataType;

namespace RetinaNet.Export;

/// <summary>Writes the nodes the modules emit (<see cref="RetinaNetModel.EmitOnnx"/>) into the graph, named as
/// <see cref="OnnxNames"/>. Weights and activations are in <paramref name="precision"/> (float or float16).</summary>
sealed class NetworkGraph(GraphBuilder graph, RetinaNetModel model, DataType precision) : IOnnxEmitter
{
    readonly Dictionary<nn.Module, string> paths = model.named_modules()
        .ToDictionary<(string name, nn.Module module), nn.Module, string>(
            m => m.module, m => m.name, ReferenceEqualityComparer.Instance);

    public string PathOf(nn.Module module, int? level = null) =>
        level is int l ? OnnxNames.AtLevel(paths[module], l) : paths[module];

    /// <summary>A head conv (level given) shares its initializers across levels.</summary>
    public string Conv(string input, Conv2d conv, FrozenBatchNorm2d? norm = null, int? level = null)
    {
        string path = paths[conv];
        string weight = OnnxNames.Weight(path), bias = OnnxNames.Bias(path);
        if (!graph.HasValue(weight))
        {
            var (w, b) = Fold(conv, norm);
            graph.Initializer(weight, w);
            graph.Initializer(bias, b);
        }
        return graph.Node("Conv", PathOf(conv, level), [input, weight, bias],
            Attr("kernel_shape", conv.kernel_size), Attr("strides", conv.stride), Attr("pads", Pads(conv.padding)),
            Attr("dilations", conv.dilation), Attr("group", conv.groups));
    }

    public string Relu(string input, string? name = null) => graph.Node("Relu", name ?? $"{input}.relu", [input]);

    public string Relu6(string input, string name) =>
        graph.Node("Clip", name, [input, Constant("relu6.min", [0f], true), Constant("relu6.max", [6f], true)]);

    public string Add(string a, string b, string name) => graph.Node("Add", name, [a, b]);

    public string MaxPool(string input, MaxPool2d pool) =>
        graph.Node("MaxPool", paths[pool], [input], Attr("kernel_shape", pool.kernel_size),
            Attr("strides", pool.stride ?? pool.kernel_size), Attr("pads", Pads(pool.padding)));

    public string Upsample2x(string input, string name) =>
        graph.Node("Resize", name, [input, "", Constant("fpn.upsample.scales", [1f, 1f, 2f, 2f])],
            Attr("mode", "nearest"), Attr("coordinate_transformation_mode", "asymmetric"),
            Attr("nearest_mode", "floor"));

    string Constant(string name, float[] values, bool scalar = false) => graph.HasValue(name) ? name
        : graph.Initializer(name, scalar ? OnnxTensors.Scalar(values[0], precision) : OnnxTensors.From(values));

    /// <summary>The conv's weight and bias with the frozen batch norm after it folded in
    /// (<see cref="FrozenBatchNorm2d.Fold"/>, float64), rounded once to <c>precision</c>.</summary>
    (TensorProto Weight, TensorProto Bias) Fold(Conv2d conv, FrozenBatchNorm2d? norm)
    {
        using var scope = NewDisposeScope();
        var (weight, bias) = FrozenBatchNorm2d.Fold(conv, norm);
        return (OnnxTensors.From(weight, precision), OnnxTensors.From(bias, precision));
    }

    static long[] Pads(long[]? padding) => [.. padding ?? [0, 0], .. padding ?? [0, 0]];
}
