using Onnx;
using RetinaNet.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Export.Quantization;

/// <summary><c>export --int8</c>: where the ranges come from and what the graph gets.</summary>
/// <param name="TablePath"><c>--calibration-table</c> (ODTK's meaning): an existing table is read instead of
/// calibrating; otherwise calibration writes its ranges there. Null or empty: not kept.</param>
public sealed record Int8Options(CalibrationSettings Settings, string? CalibrationImages, string? TablePath, int Batch,
    int Batches, Device Device);

/// <summary>INT8 export on top of <see cref="OnnxExporter"/>: the calibration table (read, or calibrated and written)
/// and the QDQ rewrite of the float32 graph, with the precision recorded in the model's metadata.</summary>
public static class Int8Export
{
    public const string CalibrationKey = "retinanet.calibration";

    public static CalibrationTable Table(RetinaNetModel model, ExportOptions export, Int8Options options,
        TextWriter log)
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
        var device = model.parameters().First().device;
        model.to(options.Device);
        CalibrationTable table;
        try
        {
            // images at the scale infer feeds the export: the model's
            var scale = model.Config.Inference;
            var data = new CalibrationData(options.CalibrationImages, options.Batch, options.Batches, export.Height,
                export.Width, options.Device, scale.Resize, scale.MaxSize);
            table = Calibration.Run(model, data, options.Settings, log);
        }
        finally { model.to(device); }
        if (!string.IsNullOrEmpty(options.TablePath))
        {
            CalibrationTableFile.Save(table, options.TablePath);
            log.WriteLine($"Wrote calibration table {options.TablePath}");
        }
        return table;
    }

    /// <summary>Quantizes a float32 export (<see cref="ExportOptions.FullPrecision"/>) in place.</summary>
    public static void Quantize(ModelProto proto, RetinaNetModel model, CalibrationTable table)
    {
        QdqPass.Apply(proto, table, Int8Policy.FloatConvolutions(model));
        SetMetadata(proto, OnnxExporter.PrecisionKey, "int8");
        SetMetadata(proto, CalibrationKey, table.Algorithm);
    }

    static void SetMetadata(ModelProto proto, string key, string value)
    {
        var entry = proto.MetadataProps.FirstOrDefault(p => p.Key == key);
        if (entry is null) proto.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        else entry.Value = value;
    }
}
