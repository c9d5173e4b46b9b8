using RetinaNet.Checkpoints;
using RetinaNet.Export;
using RetinaNet.Inference.Onnx;
using RetinaNet.Model;
using static RetinaNet.Cli.Validation;

namespace RetinaNet.Cli;

/// <summary><c>retinanet export MODEL OUT</c>: the detector as ONNX (<c>.onnx</c>), or a TensorRT engine built through ONNX
/// Runtime (<c>.plan</c>, <c>.engine</c>). Every option is checked before the model is read.</summary>
static class ExportCommand
{
    static readonly string[] EngineExtensions = [".plan", ".engine"];

    public static int Run(ParsedArgs a, TextWriter stdout)
    {
        string modelPath = a.Positionals["model"], export = a.Positionals["export"];
        ExistingFile("MODEL", modelPath, ".pth", ".safetensors");
        Extension("EXPORT", export, [".onnx", .. EngineExtensions]);
        WritableParent("EXPORT", export);
        bool engine = EngineExtensions.Any(e => export.EndsWith(e, StringComparison.OrdinalIgnoreCase));
        var size = a.Ints("--size");
        if (size.Length > 2) throw new UsageException($"--size: expected one (square) or two (height width) values, got {size.Length}");
        foreach (var s in size) MultipleOf("--size", s, Fpn.Stride);
        Positive(a, "--batch"); Positive(a, "--calibration-batches");
        var dyn = a.Ints("--dynamic-batch-opts");
        if (!(dyn[0] >= 1 && dyn[0] <= dyn[1] && dyn[1] <= dyn[2])) throw new UsageException($"--dynamic-batch-opts: expected 1 <= min <= opt <= max, got {string.Join(' ', dyn)}");
        int opset = a.OptionalInt("--opset") ?? OnnxExporter.DefaultOpset;
        if (opset < OnnxExporter.MinOpset || opset > OnnxExporter.MaxOpset)
            throw new UsageException($"--opset: {opset} is not supported; use {OnnxExporter.MinOpset}..{OnnxExporter.MaxOpset} (IR version {OnnxExporter.IrVersion}; default {OnnxExporter.DefaultOpset})");
        if (a.Flag("--raw-heads") && engine) throw new UsageException("--raw-heads exports the network alone, for ONNX consumers: use an .onnx name (engines need the full graph)");
        if (a.Flag("--int8"))
        {
            string images = a.String("--calibration-images")!, table = a.String("--calibration-table")!;
            if (images == "" && !File.Exists(table)) throw new UsageException("--int8 needs --calibration-images DIR, or an existing --calibration-table");
            if (images != "") ExistingDirectory("--calibration-images", images);
        }
        var settings = InferenceSettings(a);
        if (a.Flag("--rotated-bbox"))
            throw new NotYetSupportedException("--rotated-bbox: rotated boxes are not part of this toolkit (ODTK's rotated-box mode is out of scope)");
        if (a.Flag("--int8")) throw new NotYetSupportedException("--int8: INT8 calibration lands with the int8 branch; the model and every option were checked");

        using var model = Checkpoint.Load(modelPath).Model;
        model.UseInferenceSettings(settings);
        var options = new ExportOptions(size[0], size[^1]) { RawHeads = a.Flag("--raw-heads"), FullPrecision = a.Flag("--full-precision"), Opset = opset };
        var proto = OnnxExporter.Build(model, options);
        if (a.Flag("--verbose")) Describe(proto, stdout);
        if (engine)
        {
            var execution = new OrtExecution
            {
                Gpu = true, Fp16 = !options.FullPrecision, BatchProfile = (dyn[0], dyn[1], dyn[2]), Verbose = a.Flag("--verbose"),
            };
            TensorRtEngine.Build(proto, export, execution, stdout);
        }
        else OnnxExporter.Save(proto, export);
        stdout.WriteLine($"Exported {string.Join(" + ", model.Config.Backbones)} ({model.Config.Classes} classes) to {export}: " +
            $"{(options.RawHeads ? "raw heads" : "detections")}, input [batch, 3, {options.Height}, {options.Width}], {(options.FullPrecision ? "fp32" : "fp16")}, " +
            $"opset {opset}, {new FileInfo(export).Length / 1e6:F1} MB");
        return CommandLine.Ok;
    }

    /// <summary>--verbose: inputs, outputs and node counts by operator.</summary>
    static void Describe(Onnx.ModelProto proto, TextWriter stdout)
    {
        static string Shape(Onnx.ValueInfoProto v) => string.Join(", ", v.Type.TensorType.Shape.Dim.Select(d => d.HasDimValue ? d.DimValue.ToString() : d.DimParam));
        foreach (var i in proto.Graph.Input) stdout.WriteLine($"  input  {i.Name} [{Shape(i)}] {(Onnx.TensorProto.Types.DataType)i.Type.TensorType.ElemType}");
        foreach (var o in proto.Graph.Output) stdout.WriteLine($"  output {o.Name} [{Shape(o)}] {(Onnx.TensorProto.Types.DataType)o.Type.TensorType.ElemType}");
        stdout.WriteLine($"  {proto.Graph.Node.Count} nodes: {string.Join(", ", proto.Graph.Node.GroupBy(n => n.OpType).OrderByDescending(g => g.Count()).Select(g => $"{g.Key} {g.Count()}"))}");
        stdout.WriteLine($"  {proto.Graph.Initializer.Count} initializers, {proto.Graph.Initializer.Sum(t => (long)t.RawData.Length) / 1e6:F1} MB");
    }
}
