using RetinaNet.OnnxRuntime;
using Google.Protobuf;
using Onnx;
using RetinaNet.Model;
using static RetinaNet.Export.GraphBuilder;
using DataType = Onnx.TensorProto.Types.DataType;

namespace RetinaNet.Export;

/// <summary>What to export: the fixed input size (multiples of 128), ODTK's raw-heads layout or the full detector,
/// and float16 (default, as ODTK's export) or float32 weights and activations.</summary>
public sealed record ExportOptions(int Height, int Width)
{
    /// <summary>Only the network, ODTK's layout: normalised input <c>input_1</c>, outputs <c>score_i</c> (sigmoid) and
    /// <c>box_i</c>.</summary>
    public bool RawHeads { get; init; }
    /// <summary>float32 network; otherwise float16 weights and activations (input normalisation, decode and NMS stay
    /// float32).</summary>
    public bool FullPrecision { get; init; }
    public int Opset { get; init; } = OnnxExporter.DefaultOpset;

    public void Validate()
    {
        const int multiple = PyramidLevels.InputMultiple;
        if (Height <= 0 || Width <= 0 || Height % multiple != 0 || Width % multiple != 0)
            throw new ArgumentException(
                $"export size {Height}x{Width}: height and width must be positive multiples of {multiple}");
        if (Opset < OnnxExporter.MinOpset || Opset > OnnxExporter.MaxOpset)
            throw new ArgumentException($"opset {Opset} is not supported: " +
                $"use {OnnxExporter.MinOpset}..{OnnxExporter.MaxOpset} " +
                $"(IR version {OnnxExporter.IrVersion}; default {OnnxExporter.DefaultOpset})");
    }
}

/// <summary>Builds the ONNX model of a detector (IR version 8, opset 17 by default, symbolic batch, fixed H x W) and
/// writes it. <see cref="Build"/> returns the <see cref="ModelProto"/> before serialisation so a pass (INT8 QDQ) can
/// rewrite it. Metadata keys <c>retinanet.*</c> record what <c>infer</c> needs to run it.</summary>
public static class OnnxExporter
{
    public const long IrVersion = 8;
    public const int DefaultOpset = 17, MinOpset = 13, MaxOpset = 18;
    public const string LayoutKey = ExportedFile.LayoutKey, ClassesKey = ExportedFile.ClassesKey,
        BackbonesKey = "retinanet.backbones", PrecisionKey = ExportedFile.PrecisionKey,
        InferenceKey = "retinanet.inference", ResizeKey = ExportedFile.ResizeKey, MaxSizeKey = ExportedFile.MaxSizeKey,
        CategoriesKey = ExportedFile.CategoriesKey, AnchorsKey = "retinanet.anchors";

    /// <summary>What a raw-heads client needs to make the anchors (<c>samples/python/decode_raw_heads.py</c>): ratios,
    /// scales, angles (empty: axis-aligned) and the strides of the output levels, as JSON.</summary>
    public static string AnchorsMetadata(DetectorConfig config) => System.Text.Json.JsonSerializer.Serialize(new
    {
        ratios = config.Anchors.Ratios, scales = config.Anchors.Scales, angles = config.Anchors.Angles,
        strides = Enumerable.Range(0, PyramidLevels.PerBackbone * config.Backbones.Count)
            .Select(PyramidLevels.StrideOf),
    });

    public static ModelProto Build(RetinaNetModel model, ExportOptions options)
    {
        options.Validate();
        var precision = options.FullPrecision ? DataType.Float : DataType.Float16;
        var graph = new GraphBuilder($"RetinaNet_{string.Join("_", model.Config.Backbones)}");
        string input = options.RawHeads ? InputGraph.Raw(graph, options.Height, options.Width)
            : InputGraph.Normalised(graph, options.Height, options.Width);
        if (precision != DataType.Float) input = graph.Node("Cast", "input.half", [input], Attr("to", (long)precision));
        var (cls, box) = model.EmitOnnx(new NetworkGraph(graph, model, precision), input);
        if (precision != DataType.Float)
        {
            cls = cls.Select((c, i) => graph.Node("Cast", $"{c}.float", [c], Attr("to", (long)DataType.Float)))
                .ToArray();
            box = box.Select((b, i) => graph.Node("Cast", $"{b}.float", [b], Attr("to", (long)DataType.Float)))
                .ToArray();
        }
        if (options.RawHeads) RawOutputs(graph, model.Config, cls, box, options);
        else new PostprocessGraph(graph, model.Config, options.Height, options.Width).Detections(cls, box);

        var proto = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = "retinanet",
            ProducerVersion = typeof(OnnxExporter).Assembly.GetName().Version?.ToString() ?? "",
            DocString = $"RetinaNet {string.Join(" + ", model.Config.Backbones)}, {model.Config.Classes} classes, " +
                $"input {options.Height}x{options.Width}",
            Graph = graph.Graph,
        };
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = options.Opset });
        var inference = model.Config.Inference;
        foreach (var (key, value) in new[]
        {
            (LayoutKey, options.RawHeads ? ExportedFile.RawHeadsLayout : "detections"),
            (ClassesKey, model.Config.Classes.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            (BackbonesKey, string.Join(" ", model.Config.Backbones)),
            (PrecisionKey, options.FullPrecision ? "fp32" : "fp16"),
            (InferenceKey, FormattableString.Invariant($"score>={inference.ScoreThreshold} top-n={inference.TopN} ")
                + FormattableString.Invariant($"nms={inference.NmsThreshold} detections={inference.Detections}")),
            // the scale the model was trained for: infer resizes to it (within H x W) unless given
            (ResizeKey, FormattableString.Invariant($"{inference.Resize}")),
            (MaxSizeKey, FormattableString.Invariant($"{inference.MaxSize}")),
            // class i of the outputs is categories[i]: [{"id": 1, "name": "cat"}, ...]
            (AnchorsKey, AnchorsMetadata(model.Config)),
            (CategoriesKey, System.Text.Json.JsonSerializer.Serialize(
                model.Config.Categories.Select(c => new { id = c.Id, name = c.Name }))),
            (OnnxContract.InputKey, OnnxContract.Input(options, model.Config)),
            (OnnxContract.OutputsKey, OnnxContract.Outputs(options, model.Config)),
        })
            proto.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        return proto;
    }

    static void RawOutputs(GraphBuilder graph, DetectorConfig config, string[] cls, string[] box, ExportOptions options)
    {
        for (int level = 0; level < cls.Length; level++)
        {
            int stride = PyramidLevels.StrideOf(level);
            long h = options.Height / stride, w = options.Width / stride;
            var scores = graph.Node("Sigmoid", $"{cls[level]}.sigmoid", [cls[level]]);
            graph.Output(scores, OnnxNames.RawScores(level), DataType.Float, "batch",
                (long)config.Classes * config.Anchors.Count, h, w);
            graph.Output(box[level], OnnxNames.RawBoxes(level), DataType.Float, "batch",
                (long)config.BoxValues * config.Anchors.Count, h, w);
        }
    }

    /// <summary>Writes the model atomically (temporary file, then rename).</summary>
    public static void Save(ModelProto model, string path)
    {
        var temporary = path + ".tmp";
        using (var stream = File.Create(temporary)) model.WriteTo(stream);
        File.Move(temporary, path, overwrite: true);
    }

    public static ModelProto Load(string path)
    {
        using var stream = File.OpenRead(path);
        try { return ModelProto.Parser.ParseFrom(stream); }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"{path} is not an ONNX model ({e.Message})");
        }
    }
}
