using Onnx;
using DataType = Onnx.TensorProto.Types.DataType;

namespace RetinaNet.Export;

/// <summary>Appends nodes (in topological order, as added), initializers, inputs and outputs to an ONNX graph. Node
/// names and value names are each checked unique, so that names are stable identifiers a later pass can look for. A
/// node with one output names it as the node; with several, <c>NAME:0</c>, <c>NAME:1</c>, ...</summary>
public sealed class GraphBuilder
{
    readonly HashSet<string> nodeNames = new(StringComparer.Ordinal);
    readonly HashSet<string> valueNames = new(StringComparer.Ordinal);

    public GraphProto Graph { get; }

    public GraphBuilder(string name) => Graph = new GraphProto { Name = name };

    public bool HasValue(string name) => valueNames.Contains(name);

    public string Initializer(string name, TensorProto value)
    {
        Claim(name);
        value.Name = name;
        Graph.Initializer.Add(value);
        return name;
    }

    /// <summary>A node with one output (named as the node). Empty input names mark omitted optional inputs.</summary>
    public string Node(string opType, string name, IReadOnlyList<string> inputs, params AttributeProto[] attributes) =>
        Node(opType, name, inputs, 1, attributes)[0];

    public string[] Node(string opType, string name, IReadOnlyList<string> inputs, int outputs,
        params AttributeProto[] attributes)
    {
        if (!nodeNames.Add(name)) throw new InvalidOperationException($"ONNX node name '{name}' is used twice");
        foreach (var input in inputs)
            if (input != "" && !valueNames.Contains(input))
                throw new InvalidOperationException($"ONNX node '{name}' reads '{input}', which no node, input or "
                    + "initializer defines");
        var names = outputs == 1 ? [name] : Enumerable.Range(0, outputs).Select(i => $"{name}:{i}").ToArray();
        foreach (var output in names) Claim(output);
        var node = new NodeProto { OpType = opType, Name = name };
        node.Input.AddRange(inputs);
        node.Output.AddRange(names);
        node.Attribute.AddRange(attributes);
        Graph.Node.Add(node);
        return names;
    }

    /// <summary>A graph input; dimensions are sizes or symbolic names.</summary>
    public string Input(string name, DataType type, params object[] dims)
    {
        Claim(name);
        Graph.Input.Add(ValueInfo(name, type, dims));
        return name;
    }

    /// <summary>Publishes <paramref name="value"/> as graph output <paramref name="name"/> (through an Identity node
    /// when the names differ).</summary>
    public void Output(string value, string name, DataType type, params object[] dims)
    {
        if (value != name) Node("Identity", name, [value]);
        Graph.Output.Add(ValueInfo(name, type, dims));
    }

    static ValueInfoProto ValueInfo(string name, DataType type, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d switch
            {
                string symbol => new TensorShapeProto.Types.Dimension { DimParam = symbol },
                long size => new TensorShapeProto.Types.Dimension { DimValue = size },
                int size => new TensorShapeProto.Types.Dimension { DimValue = size },
                _ => throw new ArgumentException($"dimension {d} of {name} is neither a size nor a name"),
            });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }

    void Claim(string name)
    {
        if (string.IsNullOrEmpty(name)) throw new InvalidOperationException("ONNX values need a name");
        if (!valueNames.Add(name)) throw new InvalidOperationException($"ONNX value name '{name}' is defined twice");
    }

    public static AttributeProto Attr(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Attr(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static AttributeProto Attr(string name, string value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.String,
            S = Google.Protobuf.ByteString.CopyFromUtf8(value) };

    public static AttributeProto Attr(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    public static AttributeProto Attr(string name, TensorProto value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Tensor, T = value };
}
