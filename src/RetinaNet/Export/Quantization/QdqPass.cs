using Google.Protobuf;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;
using DataType = Onnx.TensorProto.Types.DataType;

namespace RetinaNet.Export.Quantization;

/// <summary>Which runtime an INT8 graph is laid out for.</summary>
public enum Int8Target
{
    /// <summary>ONNX Runtime's CPU provider: every quantized Conv is wrapped as DQ(input), DQ(int8 weight),
    /// DQ(int32 bias) → Conv [→ Relu] → Q, the pattern ONNX Runtime fuses into QLinearConv. Activations are uint8
    /// (its x86 kernels are uint8 × int8; int8 pairs it converts itself, but not all of them, and a Conv whose
    /// input and output types differ stays float), and a Relu's output has zero point 0, which lets ONNX Runtime fold
    /// the Relu into the Q. Ranges are per graph tensor.</summary>
    OnnxRuntime,
    /// <summary>TensorRT's explicit quantization (NVIDIA's pytorch-quantization exports the same): Q/DQ on each Conv's
    /// input only, symmetric, TensorRT fuses the rest itself; ranges are per convolution (ODTK's table).</summary>
    TensorRt,
}

/// <summary>Rewrites an exported float32 graph into a QDQ INT8 graph (<see cref="Int8Target"/>). Every Conv but the
/// float ones reads
/// <list type="bullet">
/// <item>its input through QuantizeLinear → DequantizeLinear with the calibrated per-tensor scale, one pair per
/// tensor however many nodes read it (<c>TENSOR/QuantizeLinear</c>, scale <c>TENSOR.scale</c>): int8 with zero
/// point 0 and scale amax / 127 (TensorRT); uint8 on <see cref="Int8Target.OnnxRuntime"/>, zero point 128 and
/// amax / 127 for a tensor that can be negative, zero point 0 and amax / 255 for a Relu's output (all 256 steps on
/// [0, amax]);</item>
/// <item>its weight as an int8 initializer (<c>NODE.weight.int8</c>: the file is about a quarter of the float one)
/// through DequantizeLinear with axis 0: one scale per output channel, max |W[o]| / 127 of the (batch-norm folded)
/// float weight, zero points 0.</item>
/// </list>
/// On <see cref="Int8Target.OnnxRuntime"/> each quantized Conv's output (its Relu's, where a Relu is its only reader)
/// gets a pair too, read by every reader, and its bias becomes int32 with scale input scale × weight scale. The float
/// convolutions (the two output layers) and all post-processing stay float. Scales come from the calibration table:
/// by the Conv's module path (<see cref="OnnxNames.ModulePathOf"/>) for TensorRT, by tensor name for ONNX Runtime
/// (<see cref="TensorsToCalibrate"/>). Needs opset 13 (per-axis Q/DQ).</summary>
public static class QdqPass
{
    const int MinOpset = 13;

    public static void Apply(ModelProto model, CalibrationTable table, IReadOnlySet<string> floatConvolutions,
        Int8Target target = Int8Target.TensorRt)
    {
        CheckOpset(model);
        var graph = new GraphView(model.Graph);
        var rewriter = new Rewriter(model.Graph, graph);
        var missing = new SortedSet<string>(StringComparer.Ordinal);
        float? Scale(string name, bool nonNegative)
        {
            if (table.Scales.ContainsKey(name)) return (float)(table.Amax(name) / (nonNegative ? 255 : 127));
            missing.Add(name);
            return null;
        }
        var convolutions = QuantizedConvolutions(model.Graph, floatConvolutions);
        if (target == Int8Target.TensorRt)
            foreach (var conv in convolutions)
            {
                if (Scale(OnnxNames.ModulePathOf(conv.Name), false) is float scale) rewriter.ReadQuantized(conv, scale);
                rewriter.QuantizeWeight(conv);
            }
        else
        {
            // each Conv's input as it was, before its readers are pointed at the DQ outputs
            var inputs = convolutions.Select(c => c.Input[0]).ToList();
            foreach (var tensor in TensorsToCalibrate(model, floatConvolutions))
            {
                bool nonNegative = graph.IsNonNegative(tensor);
                if (Scale(tensor, nonNegative) is float scale) rewriter.QuantizeEverywhere(tensor, scale, nonNegative);
            }
            if (missing.Count == 0)
                for (int i = 0; i < convolutions.Count; i++)
                    rewriter.QuantizeWeightAndBias(convolutions[i], inputs[i]);
        }
        if (missing.Count > 0)
            throw new InvalidDataException($"the calibration table has no range for {missing.Count} " +
                $"{(target == Int8Target.TensorRt ? "convolution" : "tensor")}(s), e.g. {missing.First()}: it was " +
                "made for another model or another --int8-target; calibrate again (--calibration-images)");
        rewriter.Finish();
    }

    /// <summary>The tensors <see cref="Int8Target.OnnxRuntime"/> quantizes, in graph order: each quantized Conv's
    /// input and its output (its Relu's, where a Relu is the Conv output's only reader).</summary>
    public static IReadOnlyList<string> TensorsToCalibrate(ModelProto model, IReadOnlySet<string> floatConvolutions)
    {
        var graph = new GraphView(model.Graph);
        var tensors = new List<string>();
        foreach (var conv in QuantizedConvolutions(model.Graph, floatConvolutions))
        {
            tensors.Add(conv.Input[0]);
            var readers = graph.Readers(conv.Output[0]);
            tensors.Add(readers is [{ OpType: "Relu" } relu] ? relu.Output[0] : conv.Output[0]);
        }
        return tensors.Distinct(StringComparer.Ordinal).ToList();
    }

    static List<NodeProto> QuantizedConvolutions(GraphProto graph, IReadOnlySet<string> floatConvolutions) =>
        graph.Node.Where(n => n.OpType == "Conv" && !floatConvolutions.Contains(OnnxNames.ModulePathOf(n.Name)))
            .ToList();

    static void CheckOpset(ModelProto model)
    {
        long opset = model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version)
            .DefaultIfEmpty(0).Max();
        if (opset < MinOpset)
            throw new ArgumentException(
                $"INT8 QDQ export needs opset {MinOpset} or later (per-channel weight scales), got {opset}");
    }

    /// <summary>Who produces and who reads each tensor of a graph.</summary>
    sealed class GraphView
    {
        readonly Dictionary<string, NodeProto> producers = new(StringComparer.Ordinal);
        readonly Dictionary<string, List<NodeProto>> readers = new(StringComparer.Ordinal);

        public GraphView(GraphProto graph)
        {
            foreach (var node in graph.Node)
            {
                foreach (var output in node.Output) producers[output] = node;
                foreach (var input in node.Input.Distinct())
                {
                    if (!readers.TryGetValue(input, out var list)) readers[input] = list = [];
                    list.Add(node);
                }
            }
        }

        public IReadOnlyList<NodeProto> Readers(string tensor) => readers.GetValueOrDefault(tensor) ?? [];

        /// <summary>The node writing <paramref name="tensor"/>; null for a graph input or an initializer.</summary>
        public NodeProto? Producer(string tensor) => producers.GetValueOrDefault(tensor);

        /// <summary>A Relu's output, or a max pooling of one.</summary>
        public bool IsNonNegative(string tensor) => producers.GetValueOrDefault(tensor) is { } p
            && (p.OpType == "Relu" || p.OpType == "MaxPool" && IsNonNegative(p.Input[0]));
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
        readonly Dictionary<string, float[]> weightScales = new(StringComparer.Ordinal);
        readonly Dictionary<string, int> biasCopies = new(StringComparer.Ordinal);
        // inserted nodes, placed after the node producing their input (or before the first node)
        readonly Dictionary<NodeProto, List<NodeProto>> after = new(ReferenceEqualityComparer.Instance);
        readonly List<NodeProto> atStart = [];
        readonly GraphView view;

        public Rewriter(GraphProto graph, GraphView view)
        {
            this.graph = graph;
            this.view = view;
            initializers = graph.Initializer.ToDictionary(i => i.Name, StringComparer.Ordinal);
            names = [.. graph.Initializer.Select(i => i.Name), .. graph.Input.Select(i => i.Name),
                .. graph.Node.SelectMany(n => n.Output), .. graph.Node.Select(n => n.Name)];
        }

        /// <summary>The Conv's input through the tensor's symmetric int8 Q/DQ pair (made on first use). Readers of
        /// one tensor were calibrated on the same values, so their scales agree; a foreign table that disagrees gets
        /// the wider one.</summary>
        public void ReadQuantized(NodeProto conv, float scale)
        {
            string input = conv.Input[0];
            if (dequantized.TryGetValue(input, out var existing))
            {
                if (scale > activationScales[input]) SetScalar(input + ".scale", activationScales[input] = scale);
                conv.Input[0] = existing;
                return;
            }
            conv.Input[0] = Pair(input, scale, DataType.Int8, zeroPoint: 0);
        }

        /// <summary>Every reader of <paramref name="tensor"/> reads it through its Q/DQ pair: ONNX Runtime sees a Q
        /// after the producer and gives each reader a DQ of its own.</summary>
        public void QuantizeEverywhere(string tensor, float scale, bool nonNegative)
        {
            // the new Q node is not in graph.Node yet, so it keeps reading the tensor itself
            var output = Pair(tensor, scale, DataType.Uint8, zeroPoint: (byte)(nonNegative ? 0 : 128));
            foreach (var node in graph.Node)
                for (int i = 0; i < node.Input.Count; i++)
                    if (node.Input[i] == tensor) node.Input[i] = output;
        }

        /// <summary>A per-tensor Q/DQ pair of <paramref name="type"/> (int8 or uint8) whose zero point has the bits
        /// <paramref name="zeroPoint"/>.</summary>
        string Pair(string input, float scale, DataType type, byte zeroPoint)
        {
            activationScales[input] = scale;
            var scaleName = AddInitializer(input + ".scale", Scalar(scale));
            var zero = new TensorProto { DataType = (int)type, RawData = ByteString.CopyFrom(zeroPoint) };
            var zeroName = AddInitializer(input + ".zero_point", zero);
            string quantized = Claim(input + "/QuantizeLinear"), output = Claim(input + "/DequantizeLinear");
            Insert(input, Node("QuantizeLinear", quantized, [input, scaleName, zeroName], null));
            Insert(input, Node("DequantizeLinear", output, [quantized, scaleName, zeroName], null));
            return dequantized[input] = output;
        }

        /// <summary>The Conv's weight as int8 per output channel (axis 0), dequantized once per weight.</summary>
        public void QuantizeWeight(NodeProto conv)
        {
            string weight = conv.Input[1];
            if (dequantized.TryGetValue(weight, out var existing))
            {
                conv.Input[1] = existing;
                return;
            }
            using var scope = NewDisposeScope();
            var w = FloatInitializer(weight, "weight");
            var amax = w.abs().flatten(1).amax(1);
            // an all-zero channel quantizes to zeros with any scale; 1 keeps it valid
            var scales = where(amax > Of(0), amax / Of(CalibrationTable.Int8Max), ones_like(amax));
            var shape = Enumerable.Repeat(1L, (int)w.dim()).ToArray();
            shape[0] = -1;
            var values = (w / scales.view(shape)).round().clamp(Of(-CalibrationTable.Int8Max), Of(
                CalibrationTable.Int8Max)).to(ScalarType.Int8);
            weightScales[weight] = scales.data<float>().ToArray();
            conv.Input[1] = dequantized[weight] = Dequantized(weight + ".int8", weight, values, scales,
                Int8Of(new sbyte[scales.shape[0]], scales.shape[0]));
        }

        /// <summary><see cref="QuantizeWeight"/>, and the bias as int32 with scale input scale × weight scale per
        /// channel (ONNX Runtime fuses a Conv only when all its inputs are dequantized). Readers of one bias at
        /// different input scales (the heads at each pyramid level) get one int32 bias each. <paramref name="input"/>
        /// is the Conv's input tensor, whose scale the bias takes.</summary>
        public void QuantizeWeightAndBias(NodeProto conv, string input)
        {
            string weight = conv.Input[1];
            QuantizeWeight(conv);
            if (conv.Input.Count < 3) return;
            string bias = conv.Input[2];
            float inputScale = activationScales[input];
            string key = $"{bias}@{inputScale:R}";
            if (dequantized.TryGetValue(key, out var existing))
            {
                conv.Input[2] = existing;
                return;
            }
            using var scope = NewDisposeScope();
            var b = FloatInitializer(bias, "bias");
            using var inputStep = ((double)inputScale).ToScalar();
            var scales = tensor(weightScales[weight]).mul(inputStep);
            var values = (b / scales).round().clamp(Of(int.MinValue), Of(int.MaxValue)).to(ScalarType.Int32);
            var zeros = new TensorProto { DataType = (int)DataType.Int32, RawData = ByteString.CopyFrom(
                new byte[4 * scales.shape[0]]) };
            zeros.Dims.Add(scales.shape[0]);
            int copy = biasCopies[bias] = biasCopies.GetValueOrDefault(bias) + 1;
            conv.Input[2] = dequantized[key] = Dequantized($"{bias}.int32.{copy}", $"{bias}.int32.{copy}", values,
                scales, zeros);
        }

        Tensor FloatInitializer(string name, string what)
        {
            if (!initializers.TryGetValue(name, out var values))
                throw new InvalidDataException(
                    $"Conv {what} '{name}' is not an initializer; INT8 export quantizes constant {what}s only");
            if ((DataType)values.DataType != DataType.Float)
                throw new InvalidDataException(
                    $"Conv {what} '{name}' is {(DataType)values.DataType}: INT8 QDQ export needs the float32 graph");
            return OnnxTensors.ToTensor(values);
        }

        /// <summary>A DequantizeLinear (axis 0, named after <paramref name="prefix"/>) of the integer initializer
        /// <paramref name="name"/>; the float source is dropped at <see cref="Finish"/> once nothing reads
        /// it.</summary>
        string Dequantized(string name, string prefix, Tensor values, Tensor scales, TensorProto zeros)
        {
            var quantized = AddInitializer(name, OnnxTensors.From(values));
            var scaleName = AddInitializer(prefix + ".scale", OnnxTensors.From(scales.contiguous()));
            var zeroName = AddInitializer(prefix + ".zero_point", zeros);
            var output = Claim(prefix + "/DequantizeLinear");
            atStart.Add(Node("DequantizeLinear", output, [quantized, scaleName, zeroName], axis: 0));
            return output;
        }

        void Insert(string input, NodeProto node)
        {
            if (view.Producer(input) is not { } producer) atStart.Add(node);
            else
            {
                if (!after.TryGetValue(producer, out var list)) after[producer] = list = [];
                list.Add(node);
            }
        }

        /// <summary>Places the new nodes (topologically: each right after its input's producer) and drops the float
        /// initializers nothing reads any more.</summary>
        public void Finish()
        {
            var nodes = new List<NodeProto>(graph.Node.Count * 2);
            nodes.AddRange(atStart);
            foreach (var node in graph.Node)
            {
                nodes.Add(node);
                if (after.TryGetValue(node, out var list)) nodes.AddRange(list);
            }
            graph.Node.Clear();
            graph.Node.AddRange(nodes);
            var read = nodes.SelectMany(n => n.Input).Concat(graph.Output.Select(o => o.Name)).ToHashSet();
            var unread = graph.Initializer.Where(i => !read.Contains(i.Name)).ToList();
            foreach (var initializer in unread) graph.Initializer.Remove(initializer);
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

        static TensorProto Int8Of(sbyte[] values, long? length)
        {
            var proto = new TensorProto
            {
                DataType = (int)DataType.Int8,
                RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()))
            };
            if (length is long n) proto.Dims.Add(n);
            return proto;
        }
    }
}
