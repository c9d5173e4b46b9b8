using Onnx;
using RetinaNet.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Export.Quantization;

/// <summary><c>export --int8</c>: where the ranges come from and what the graph gets.</summary>
/// <param name="TablePath"><c>--calibration-table</c> (ODTK's meaning): an existing table is read instead of
/// calibrating; otherwise calibration writes its ranges there. Null or empty: not kept.</param>
/// <param name="Target">The runtime the graph is laid out for; calibration follows it (tensors by name through ONNX
/// Runtime, or convolution inputs through the model on <paramref name="Device"/>).</param>
public sealed record Int8Options(CalibrationSettings Settings, string? CalibrationImages, string? TablePath, int Batch,
    int Batches, Device Device, Int8Target Target = Int8Target.OnnxRuntime);

/// <summary>INT8 export on top of <see cref="OnnxExporter"/>: the calibration table (read, or calibrated and written)
/// and the QDQ rewrite of the float32 graph, with the precision recorded in the model's metadata.</summary>
public static class Int8Export
{
    public const string CalibrationKey = "retinanet.calibration", TargetKey = "retinanet.int8_target";

    /// <param name="floatGraph">The float32 export of <paramref name="model"/>
    /// (<see cref="ExportOptions.FullPrecision"/>) that <see cref="Quantize"/> will rewrite.</param>
    public static CalibrationTable Table(RetinaNetModel model, ModelProto floatGraph, ExportOptions export,
        Int8Options options, TextWriter log)
    {
        if (!string.IsNullOrEmpty(options.TablePath) && File.Exists(options.TablePath))
        {
            var existing = CalibrationTableFile.Load(options.TablePath);
            log.WriteLine($"Using calibration table {options.TablePath} ({existing.Algorithm}, {existing.Scales.Count} "
                + "ranges)");
            return existing;
        }
        if (string.IsNullOrEmpty(options.CalibrationImages))
            throw new ArgumentException("INT8 export needs calibration images, or an existing calibration table");
        // images at the scale infer feeds the export: the model's
        var scale = model.Config.Inference;
        var data = new CalibrationData(options.CalibrationImages, options.Batch, options.Batches, export.Height,
            export.Width, options.Device, scale.Resize, scale.MaxSize);
        var table = options.Target == Int8Target.OnnxRuntime
            ? GraphCalibration.Run(floatGraph,
                QdqPass.TensorsToCalibrate(floatGraph, Int8Policy.FloatConvolutions(model)), data, options.Settings,
                log)
            : OnTheModel(model, data, options.Settings, log);
        if (!string.IsNullOrEmpty(options.TablePath))
        {
            CalibrationTableFile.Save(table, options.TablePath);
            log.WriteLine($"Wrote calibration table {options.TablePath}");
        }
        return table;
    }

    static CalibrationTable OnTheModel(RetinaNetModel model, CalibrationData data, CalibrationSettings settings,
        TextWriter log)
    {
        var device = model.parameters().First().device;
        model.to(data.Device);
        try { return Calibration.Run(model, data, settings, log); }
        finally { model.to(device); }
    }

    /// <summary>Quantizes a float32 export (<see cref="ExportOptions.FullPrecision"/>) in place.</summary>
    public static void Quantize(ModelProto proto, RetinaNetModel model, CalibrationTable table, Int8Target target)
    {
        QdqPass.Apply(proto, table, Int8Policy.FloatConvolutions(model), target);
        SetMetadata(proto, OnnxExporter.PrecisionKey, "int8");
        SetMetadata(proto, CalibrationKey, table.Algorithm);
        SetMetadata(proto, TargetKey, target == Int8Target.OnnxRuntime ? "onnxruntime" : "tensorrt");
    }

    static void SetMetadata(ModelProto proto, string key, string value)
    {
        var entry = proto.MetadataProps.FirstOrDefault(p => p.Key == key);
        if (entry is null) proto.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        else entry.Value = value;
    }
}
