using Google.Protobuf;
using Onnx;
using static TorchSharp.torch;
using DataType = Onnx.TensorProto.Types.DataType;

namespace RetinaNet.Export.Quantization;

/// <summary>Rewrites an exported float32 graph into a QDQ INT8 graph, in the form TensorRT's explicit quantization
/// takes (NVIDIA's pytorch-quantization exports the same) and ONNX Runtime runs: every Conv but the float ones reads
/// <list type="bullet">
/// <item>its input through QuantizeLinear → DequantizeLinear with the calibrated per-tensor scale and int8 zero
/// point 0 (symmetric), one pair per tensor however many convolutions read it (<c>TENSOR/QuantizeLinear</c>, scale
/// <c>TENSOR.scale</c>);</item>
/// <item>its weight through QuantizeLinear → DequantizeLinear with axis 0: one scale per output channel,
/// max |W[o]| / 127 of the (batch-norm folded) float weight, zero points 0 (<c>NODE.weight/QuantizeLinear</c>).</item>
/// </list>
/// Biases, the float convolutions (the two output layers) and all post-processing stay float. Scales come from the
/// calibration table by the Conv's module path (<see cref="OnnxNames.ModulePathOf"/>). Needs opset 13 (per-axis
/// Q/DQ).</summary>
public static class QdqPass
{
    const int MinOpset = 13;

    public static void Apply(ModelProto model, CalibrationTable table, IReadOnlySet<string> floatConvolutions)
    {
        long opset = model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version)
            .DefaultIfEmpty(0).Max();
        if (opset < MinOpset)
            throw new ArgumentException(
                $"INT8 QDQ export needs opset {MinOpset} or later (per-channel weight scales), got {opset}");
        var graph = model.Graph;
        var rewriter = new Rewriter(graph);
        var missing = new SortedSet<string>(StringComparer.Ordinal);
        var nodes = new List<NodeProto>(graph.Node.Count * 2);
        foreach (var node in graph.Node)
        {
            if (node.OpType == "Conv" && !floatConvolutions.Contains(OnnxNames.ModulePathOf(node.Name)))
            {
                string path = OnnxNames.ModulePathOf(node.Name);
                if (table.Scales.TryGetValue(path, out float scale))
                {
                    node.Input[0] = rewriter.QuantizedActivation(node.Input[0], scale, nodes);
                    node.Input[1] = rewriter.QuantizedWeight(node.Input[1], nodes);
                }
                else missing.Add(path);
            }
            nodes.Add(node);
        }
        if (missing.Count > 0)
            throw new InvalidDataException($"the calibration table has no range for {missing.Count} convolution(s), " +
                $"e.g. {missing.First()}: it was made for another model; calibrate again (--calibration-images)");
        graph.Node.Clear();
        graph.Node.AddRange(nodes);
    }

    /// <summary>Adds the Q/DQ nodes and their initializers, each once, with names checked against the
    /// graph's.</summary>
    sealed class Rewriter
    {
        readonly GraphProto graph;
        readonly Dictionary<string, TensorProto> initializers;
        readonly HashSet<string> names;
        readonly Dictionary<string, string> dequantized = new(StringComparer.Ordinal);
        readonly Dictionary<string, float> activationScales = new(StringComparer.Ordinal);

        public Rewriter(GraphProto graph)
        {
            this.graph = graph;
            initializers = graph.Initializer.ToDictionary(i => i.Name, StringComparer.Ordinal);
            names = [.. graph.Initializer.Select(i => i.Name), .. graph.Input.Select(i => i.Name),
                .. graph.Node.SelectMany(n => n.Output), .. graph.Node.Select(n => n.Name)];
        }

        /// <summary>The dequantized input: a pair per tensor, placed just before its first reader. Readers of one
        /// tensor were calibrated on the same values, so their scales agree; a foreign table that disagrees gets the
        /// wider one.</summary>
        public string QuantizedActivation(string input, float scale, List<NodeProto> nodes)
        {
            if (dequantized.TryGetValue(input, out var existing))
            {
                if (scale > activationScales[input]) SetScalar(input + ".scale", activationScales[input] = scale);
                return existing;
            }
            activationScales[input] = scale;
            var scaleName = AddInitializer(input + ".scale", Scalar(scale));
            var zeroName = AddInitializer(input + ".zero_point", Int8Zeros());
            return dequantized[input] = AddPair(input, scaleName, zeroName, nodes, axis: null);
        }

        /// <summary>The dequantized weight, per output channel (axis 0).</summary>
        public string QuantizedWeight(string weight, List<NodeProto> nodes)
        {
            if (dequantized.TryGetValue(weight, out var existing)) return existing;
            if (!initializers.TryGetValue(weight, out var values))
                throw new InvalidDataException(
                    $"Conv weight '{weight}' is not an initializer; INT8 export quantizes constant weights only");
            if ((DataType)values.DataType != DataType.Float)
                throw new InvalidDataException(
                    $"Conv weight '{weight}' is {(DataType)values.DataType}: INT8 QDQ export needs the float32 graph");
            float[] scales = ChannelScales(values);
            var scaleName = AddInitializer(weight + ".scale", Vector(scales));
            var zeroName = AddInitializer(weight + ".zero_point", Int8Zeros(scales.Length));
            return dequantized[weight] = AddPair(weight, scaleName, zeroName, nodes, axis: 0);
        }

        static float[] ChannelScales(TensorProto weight)
        {
            using var scope = NewDisposeScope();
            var w = OnnxTensors.ToTensor(weight);
            var amax = w.abs().flatten(1).amax(1).to(ScalarType.Float32);
            // an all-zero channel quantizes to zeros with any scale; 1 keeps it valid
            var scales = where(amax > Of(0), amax / Of(CalibrationTable.Int8Max), ones_like(amax));
            return scales.data<float>().ToArray();
        }

        string AddPair(string input, string scale, string zeroPoint, List<NodeProto> nodes, int? axis)
        {
            string quantized = Claim(input + "/QuantizeLinear"), output = Claim(input + "/DequantizeLinear");
            nodes.Add(Node("QuantizeLinear", quantized, [input, scale, zeroPoint], axis));
            nodes.Add(Node("DequantizeLinear", output, [quantized, scale, zeroPoint], axis));
            return output;
        }

        static NodeProto Node(string op, string name, string[] inputs, int? axis)
        {
            var node = new NodeProto { OpType = op, Name = name };
            node.Input.AddRange(inputs);
            node.Output.Add(name);
            if (axis is int a) node.Attribute.Add(GraphBuilder.Attr("axis", (long)a));
            return node;
        }

        string AddInitializer(string name, TensorProto value)
        {
            value.Name = Claim(name);
            graph.Initializer.Add(value);
            initializers[name] = value;
            return name;
        }

        void SetScalar(string name, float value) =>
            initializers[name].RawData = ByteString.CopyFrom(BitConverter.GetBytes(value));

        string Claim(string name) => names.Add(name) ? name
            : throw new InvalidOperationException(
                $"cannot add '{name}' to the graph: the name is taken (was the model quantized already?)");

        static TensorProto Scalar(float value) =>
            new() { DataType = (int)DataType.Float, RawData = ByteString.CopyFrom(BitConverter.GetBytes(value)) };

        static TensorProto Vector(float[] values)
        {
            var proto = new TensorProto
            {
                DataType = (int)DataType.Float,
                RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()))
            };
            proto.Dims.Add(values.Length);
            return proto;
        }

        static TensorProto Int8Zeros(int? length = null)
        {
            var proto = new TensorProto
            {
                DataType = (int)DataType.Int8, RawData = ByteString.CopyFrom(new byte[length ?? 1])
            };
            if (length is int n) proto.Dims.Add(n);
            return proto;
        }
    }
}
