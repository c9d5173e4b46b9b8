using RetinaNet.Checkpoints;
using RetinaNet.Export;
using RetinaNet.Export.Quantization;
using RetinaNet.Inference.Onnx;
using RetinaNet.Model;
using static RetinaNet.Cli.Validation;

namespace RetinaNet.Cli;

/// <summary><c>retinanet export MODEL OUT</c>: the detector as ONNX (<c>.onnx</c>), or a TensorRT engine built through
/// ONNX Runtime (<c>.plan</c>, <c>.engine</c>). Every option is checked before the model is read.</summary>
static class ExportCommand
{
    static readonly string[] EngineExtensions = [".plan", ".engine"];

    public static int Run(ParsedArgs a, TextWriter stdout)
    {
        string modelPath = a.Positionals["model"], export = a.Positionals["export"];
        ModelArgument.Check(modelPath, ".pth", ".safetensors");
        Extension("EXPORT", export, [".onnx", .. EngineExtensions]);
        WritableParent("EXPORT", export);
        bool engine = EngineExtensions.Any(e => export.EndsWith(e, StringComparison.OrdinalIgnoreCase));
        var size = a.Ints("--size");
        if (size.Length > 2)
            throw new UsageException($"--size: expected one (square) or two (height width) values, got {size.Length}");
        foreach (var s in size) MultipleOf("--size", s, Fpn.Stride);
        Positive(a, "--batch"); Positive(a, "--calibration-batches");
        var dyn = a.Ints("--dynamic-batch-opts");
        if (!(dyn[0] >= 1 && dyn[0] <= dyn[1] && dyn[1] <= dyn[2]))
            throw new UsageException(
                $"--dynamic-batch-opts: expected 1 <= min <= opt <= max, got {string.Join(' ', dyn)}");
        int opset = a.OptionalInt("--opset") ?? OnnxExporter.DefaultOpset;
        if (opset < OnnxExporter.MinOpset || opset > OnnxExporter.MaxOpset)
            throw new UsageException($"--opset: {opset} is not supported; " +
                $"use {OnnxExporter.MinOpset}..{OnnxExporter.MaxOpset} " +
                $"(IR version {OnnxExporter.IrVersion}; default {OnnxExporter.DefaultOpset})");
        if (a.Flag("--raw-heads") && engine)
            throw new UsageException("--raw-heads exports the network alone, for ONNX consumers: " +
                "use an .onnx name (engines need the full graph)");
        bool int8 = a.Flag("--int8");
        var int8Options = int8 ? Int8Settings(a, engine) : null;
        InferenceSettings(a); // the values given, checked before the model is read
        if (engine) TensorRtEngine.EnsureAvailable(export); // before minutes of work

        using var model = Checkpoint.Load(ModelArgument.Local(modelPath, stdout)).Model;
        Inference.ModelFiles.CheckRotated(modelPath, model.Config.Rotated, a.Flag("--rotated-bbox"));
        if (model.Config.Rotated && !a.Flag("--raw-heads"))
            throw new NotYetSupportedException($"{modelPath} is a rotated-box model: its decode and rotated NMS are "
                + "not in the ONNX graph yet; export it with --raw-heads (scores and 6 box values per anchor, "
                + "ODTK's layout)");
        model.UseInferenceSettings(InferenceSettings(a, model.Config.Inference)); // given ones win over the stored
        // INT8 rewrites the float32 graph with Q/DQ; layers left in float run in fp16 on TensorRT unless
        // --full-precision.
        var options = new ExportOptions(size[0], size[^1])
        {
            RawHeads = a.Flag("--raw-heads"), FullPrecision = a.Flag("--full-precision") || int8, Opset = opset
        };
        var proto = OnnxExporter.Build(model, options);
        var table = int8Options is null ? null : Int8Export.Table(model, proto, options, int8Options, stdout);
        if (table is not null) Int8Export.Quantize(proto, model, table, int8Options!.Target);
        if (a.Flag("--verbose")) Describe(proto, stdout);
        if (engine)
        {
            var execution = new OrtExecution
            {
                Gpu = true, Fp16 = !a.Flag("--full-precision"), Int8 = int8, BatchProfile = (dyn[0], dyn[1], dyn[2]),
                Verbose = a.Flag("--verbose"),
            };
            TensorRtEngine.Build(proto, export, execution, stdout);
        }
        else OnnxExporter.Save(proto, export);
        string precision = table is not null ? $"int8 QDQ ({table.Algorithm})"
            : options.FullPrecision ? "fp32" : "fp16";
        stdout.WriteLine($"Exported {string.Join(" + ", model.Config.Backbones)} ({model.Config.Classes} classes) " +
            $"to {export}: {(options.RawHeads ? "raw heads" : "detections")}, " +
            $"input [batch, 3, {options.Height}, {options.Width}], {precision}, " +
            $"opset {opset}, {new FileInfo(export).Length / 1e6:F1} MB");
        return CommandLine.Ok;
    }

    /// <summary>--int8: ranges from an existing --calibration-table, or calibrated on --calibration-images
    /// (--calibration-batches of --batch images, on --device) and written to --calibration-table when one is
    /// named.</summary>
    static Int8Options Int8Settings(ParsedArgs a, bool engine)
    {
        string images = a.String("--calibration-images")!, table = a.String("--calibration-table")!;
        if (images == "" && !File.Exists(table))
            throw new UsageException("--int8 needs --calibration-images DIR, or an existing --calibration-table");
        if (images != "") ExistingDirectory("--calibration-images", images);
        if (table != "" && !File.Exists(table)) WritableParent("--calibration-table", table);
        CalibrationMethod method;
        try { method = CalibrationMethods.Parse(a.String("--calibration-method")!); }
        catch (ArgumentException e) { throw new UsageException($"--calibration-method: {e.Message}"); }
        double percentile = a.Double("--calibration-percentile");
        if (!(percentile > 0 && percentile <= 100))
            throw new UsageException($"--calibration-percentile: expected a percentage in (0, 100], got {percentile}");
        var device = DeviceChoice.Resolve(a.String("--device"));
        var target = a.String("--int8-target") switch
        {
            "onnxruntime" => Int8Target.OnnxRuntime,
            "tensorrt" => Int8Target.TensorRt,
            null or "" => engine ? Int8Target.TensorRt : Int8Target.OnnxRuntime,
            var other => throw new UsageException($"--int8-target: expected onnxruntime or tensorrt, got '{other}'"),
        };
        return new Int8Options(new CalibrationSettings(method, percentile), images, table, Positive(a, "--batch"),
            Positive(a, "--calibration-batches"), device, target);
    }

    /// <summary>--verbose: inputs, outputs and node counts by operator.</summary>
    static void Describe(Onnx.ModelProto proto, TextWriter stdout)
    {
        static string Shape(Onnx.ValueInfoProto v) => string.Join(", ",
            v.Type.TensorType.Shape.Dim.Select(d => d.HasDimValue ? d.DimValue.ToString() : d.DimParam));
        foreach (var i in proto.Graph.Input)
            stdout.WriteLine($"  input  {i.Name} [{Shape(i)}] " +
                $"{(Onnx.TensorProto.Types.DataType)i.Type.TensorType.ElemType}");
        foreach (var o in proto.Graph.Output)
            stdout.WriteLine($"  output {o.Name} [{Shape(o)}] " +
                $"{(Onnx.TensorProto.Types.DataType)o.Type.TensorType.ElemType}");
        stdout.WriteLine($"  {proto.Graph.Node.Count} nodes: {string.Join(", ", proto.Graph.Node.GroupBy(n => n.OpType)
            .OrderByDescending(g => g.Count()).Select(g => $"{g.Key} {g.Count()}"))}");
        stdout.WriteLine($"  {proto.Graph.Initializer.Count} initializers, " +
            $"{proto.Graph.Initializer.Sum(t => (long)t.RawData.Length) / 1e6:F1} MB");
    }
}
