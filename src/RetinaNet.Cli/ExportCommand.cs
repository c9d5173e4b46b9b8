using RetinaNet.Checkpoints;
using RetinaNet.Export;
using RetinaNet.Export.Quantization;
using RetinaNet.Inference.Onnx;
using RetinaNet.Model;
using static RetinaNet.Cli.SharedOptions;
using static RetinaNet.Cli.Validation;

namespace RetinaNet.Cli;

/// <summary>export's command line, read once; <see cref="Given"/>, the post-processing given (it wins over the
/// model's).</summary>
sealed record ExportArguments(string Model, string Export, int[] Size, int Batch, bool FullPrecision, bool Int8,
    int CalibrationBatches, string CalibrationImages, string CalibrationTable, string CalibrationMethod,
    double CalibrationPercentile, string? Int8Target, bool Verbose, bool RotatedBbox, int[] DynamicBatchOpts,
    int? Opset, bool RawHeads, string? Device, InferenceOverrides Given);

/// <summary><c>retinanet export MODEL OUT</c>: the detector as ONNX (<c>.onnx</c>), or a TensorRT engine built through
/// ONNX Runtime (<c>.plan</c>, <c>.engine</c>). Every option is checked before the model is read.</summary>
static class ExportCommand
{
    static readonly string[] EngineExtensions = [".plan", ".engine"];

    static readonly Option<int[]> Size = Option.Ints("--size", Arity.OneOrMore, "input size (square) or sizes (h w)",
        "height width", 1280);
    static readonly Option<int> Batch = Option.Int("--batch", "max batch size to use for TensorRT engine", "size", 2);
    static readonly Option<bool> Int8 = Option.Flag("--int8", "calibrate model and export in int8 precision");
    static readonly Option<int> CalibrationBatches = Option.Int("--calibration-batches",
        "number of batches to use for int8 calibration", "size", 2);
    static readonly Option<string> CalibrationImages = Option.String("--calibration-images",
        "path to calibration images to use for int8 calibration", "path", "");
    static readonly Option<string> CalibrationTable = Option.String("--calibration-table",
        "path of existing calibration table to load from, or name of new calibration table", "path", "");
    static readonly Option<string> Method = Option.String("--calibration-method", "(ours) how int8 " +
        "ranges are chosen: entropy (TensorRT's EntropyCalibration2), minmax, or percentile", "method", "entropy");
    static readonly Option<double> CalibrationPercentile = Option.Double("--calibration-percentile",
        "(ours) percentile of |activation| kept by --calibration-method percentile", "percent", 99.99);
    static readonly Option<string?> Target = Option.OptionalString("--int8-target", "(ours) runtime the int8 " +
        "graph is laid out for: onnxruntime (quantized convolutions on ONNX Runtime's CPU provider) or tensorrt " +
        "(default: tensorrt for an engine, else onnxruntime)", "runtime");
    static readonly Option<bool> Verbose = Option.Flag("--verbose", "enable verbose logging");
    static readonly Option<int[]> DynamicBatchOpts = Option.Ints("--dynamic-batch-opts", Arity.Three,
        "profile batch sizes for the TensorRT engine (min, opt, max)", "min opt max", 1, 8, 16);
    static readonly Option<int?> Opset = Option.OptionalInt("--opset", "ONNX opset version (13..18; default 17)",
        "version");
    static readonly Option<bool> RawHeads = Option.Flag("--raw-heads", "(ours) export only the network in ODTK's " +
        "layout (normalised input_1; sigmoid score_N and box_N maps), no decode or NMS");

    public static CommandSpec Spec() => new("export",
        "Export a model to ONNX (or a TensorRT engine through ONNX Runtime).",
        [("model", "path to model"), ("export", "path to exported output (.onnx, .plan or .engine)")],
        [
            Size, Batch, FullPrecision.WithHelp("export in full instead of half precision"), Int8,
            CalibrationBatches, CalibrationImages, CalibrationTable, Method, CalibrationPercentile,
            Target, Verbose, RotatedBbox, DynamicBatchOpts, Opset, RawHeads, .. Postprocessing(ModelsSetting),
            Device.WithHelp("(ours) cpu or cuda for int8 calibration (default: cuda when a GPU is present)"),
        ]);

    static ExportArguments Bind(ParsedArgs a) => new(a.Positionals["model"], a.Positionals["export"], a.Get(Size),
        a.Get(Batch), a.Get(FullPrecision), a.Get(Int8), a.Get(CalibrationBatches), a.Get(CalibrationImages),
        a.Get(CalibrationTable), a.Get(Method), a.Get(CalibrationPercentile), a.Get(Target),
        a.Get(Verbose), a.Get(RotatedBbox), a.Get(DynamicBatchOpts), a.Get(Opset), a.Get(RawHeads), a.Get(Device),
        PostprocessingGiven(a));

    public static int Run(ParsedArgs parsed, TextWriter stdout)
    {
        var a = Bind(parsed);
        string modelPath = a.Model, export = a.Export;
        ModelArgument.Check(modelPath, ".pth", ".safetensors");
        Extension("EXPORT", export, [".onnx", .. EngineExtensions]);
        WritableParent("EXPORT", export);
        bool engine = EngineExtensions.Any(e => export.EndsWith(e, StringComparison.OrdinalIgnoreCase));
        var size = a.Size;
        if (size.Length > 2)
            throw new UsageException($"{Size.Name}: expected one (square) or two (height width) values, got "
                + size.Length);
        foreach (var s in size) MultipleOf(Size.Name, s, Fpn.Stride);
        Positive(Batch, a.Batch); Positive(CalibrationBatches, a.CalibrationBatches);
        var dyn = a.DynamicBatchOpts;
        if (!(dyn[0] >= 1 && dyn[0] <= dyn[1] && dyn[1] <= dyn[2]))
            throw new UsageException(
                $"{DynamicBatchOpts.Name}: expected 1 <= min <= opt <= max, got {string.Join(' ', dyn)}");
        int opset = a.Opset ?? OnnxExporter.DefaultOpset;
        if (opset < OnnxExporter.MinOpset || opset > OnnxExporter.MaxOpset)
            throw new UsageException($"{Opset.Name}: {opset} is not supported; " +
                $"use {OnnxExporter.MinOpset}..{OnnxExporter.MaxOpset} " +
                $"(IR version {OnnxExporter.IrVersion}; default {OnnxExporter.DefaultOpset})");
        if (a.RawHeads && engine)
            throw new UsageException($"{RawHeads.Name} exports the network alone, for ONNX consumers: " +
                "use an .onnx name (engines need the full graph)");
        bool int8 = a.Int8;
        var int8Options = int8 ? Int8Settings(a, engine) : null;
        InferenceSettings(a.Given); // the values given, checked before the model is read
        if (engine) TensorRtEngine.EnsureAvailable(export); // before minutes of work

        using var model = Checkpoint.Load(ModelArgument.Local(modelPath, stdout)).Model;
        Inference.ModelFiles.CheckRotated(modelPath, model.Config.Rotated, a.RotatedBbox);
        if (model.Config.Rotated && !a.RawHeads)
            throw new NotYetSupportedException($"{modelPath} is a rotated-box model: its decode and rotated NMS are "
                + $"not in the ONNX graph yet; export it with {RawHeads.Name} (scores and 6 box values per anchor, "
                + "ODTK's layout)");
        model.UseInferenceSettings(InferenceSettings(a.Given, model.Config.Inference)); // given ones win over stored
        // INT8 rewrites the float32 graph with Q/DQ; layers left in float run in fp16 on TensorRT unless
        // --full-precision.
        var options = new ExportOptions(size[0], size[^1])
        {
            RawHeads = a.RawHeads, FullPrecision = a.FullPrecision || int8, Opset = opset
        };
        var proto = OnnxExporter.Build(model, options);
        var table = int8Options is null ? null : Int8Export.Table(model, proto, options, int8Options, stdout);
        if (table is not null) Int8Export.Quantize(proto, model, table, int8Options!.Target);
        if (a.Verbose) Describe(proto, stdout);
        if (engine)
        {
            var execution = new OrtExecution
            {
                Gpu = true, Fp16 = !a.FullPrecision, Int8 = int8, BatchProfile = (dyn[0], dyn[1], dyn[2]),
                Verbose = a.Verbose,
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
    static Int8Options Int8Settings(ExportArguments a, bool engine)
    {
        string images = a.CalibrationImages, table = a.CalibrationTable;
        if (images == "" && !File.Exists(table))
            throw new UsageException($"{Int8.Name} needs {CalibrationImages.Name} DIR, or an existing "
                + CalibrationTable.Name);
        if (images != "") ExistingDirectory(CalibrationImages.Name, images);
        if (table != "" && !File.Exists(table)) WritableParent(CalibrationTable.Name, table);
        CalibrationMethod method;
        try { method = CalibrationMethods.Parse(a.CalibrationMethod); }
        catch (ArgumentException e) { throw new UsageException($"{Method.Name}: {e.Message}"); }
        double percentile = a.CalibrationPercentile;
        if (!(percentile > 0 && percentile <= 100))
            throw new UsageException($"{CalibrationPercentile.Name}: expected a percentage in (0, 100], got "
                + $"{percentile}");
        var device = DeviceChoice.Resolve(a.Device);
        var target = a.Int8Target switch
        {
            "onnxruntime" => Int8Target.OnnxRuntime,
            "tensorrt" => Int8Target.TensorRt,
            null or "" => engine ? Int8Target.TensorRt : Int8Target.OnnxRuntime,
            var other => throw new UsageException($"{Target.Name}: expected onnxruntime or tensorrt, got "
                + $"'{other}'"),
        };
        return new Int8Options(new CalibrationSettings(method, percentile), images, table, Positive(Batch, a.Batch),
            Positive(CalibrationBatches, a.CalibrationBatches), device, target);
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
