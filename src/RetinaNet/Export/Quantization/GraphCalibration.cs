using System.Diagnostics;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;
using RetinaNet.Data.Loading;
using static TorchSharp.torch;
using DataType = Onnx.TensorProto.Types.DataType;

namespace RetinaNet.Export.Quantization;

/// <summary>Calibration of graph tensors by name (what <see cref="Int8Target.OnnxRuntime"/> quantizes): the exported
/// float32 graph itself, with those tensors added as outputs, run by ONNX Runtime on the CPU over the calibration
/// batches, each tensor's values into its own range collector. The graph is what gets quantized, so no name has to be
/// mapped back to a module.</summary>
public static class GraphCalibration
{
    // images per ONNX Runtime run: every calibrated tensor of a run is held at once
    const int ImagesPerRun = 2;

    public static CalibrationTable Run(ModelProto floatGraph, IReadOnlyList<string> tensors, CalibrationData data,
        CalibrationSettings settings, TextWriter log)
    {
        log.WriteLine($"Calibrating {tensors.Count} tensors ({settings.Method.ToString().ToLowerInvariant()}, ONNX "
            + $"Runtime) on {Calibration.Count(data)} images from {data.ImagesDir}");
        var clock = Stopwatch.StartNew();
        using var session = Probe(floatGraph, tensors);
        var collectors = tensors.ToDictionary(t => t, _ => settings.NewCollector(), StringComparer.Ordinal);
        try
        {
            foreach (var host in Calibration.Batches(data with { Device = CPU }, log))
                using (host)
                    for (int start = 0; start < host.Count; start += ImagesPerRun)
                    {
                        using var scope = NewDisposeScope();
                        var inputs = Inputs(floatGraph, host, start, Math.Min(ImagesPerRun, host.Count - start));
                        foreach (var (name, values) in OrtTensors.Run(session, inputs, tensors))
                            collectors[name].Observe(values);
                    }
            var table = CalibrationTable.FromRanges(settings.Method, tensors.Select(t => KeyValuePair.Create(t,
                Amax(t, collectors[t]))).ToList());
            log.WriteLine($"Calibrated {table.Scales.Count} tensors in {clock.Elapsed.TotalSeconds:F1} s");
            return table;
        }
        finally
        {
            foreach (var collector in collectors.Values) collector.Dispose();
        }
    }

    static double Amax(string tensor, IRangeCollector collector)
    {
        try { return collector.Amax(); }
        catch (InvalidDataException e) { throw new InvalidDataException($"INT8 calibration: {tensor}: {e.Message}"); }
    }

    /// <summary>The graph with the tensors as extra outputs.</summary>
    static InferenceSession Probe(ModelProto floatGraph, IReadOnlyList<string> tensors)
    {
        var probe = floatGraph.Clone();
        var outputs = probe.Graph.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var name in tensors.Where(outputs.Add))
            probe.Graph.Output.Add(new ValueInfoProto
            {
                Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor
                {
                    ElemType = (int)DataType.Float
                } }
            });
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        return new InferenceSession(probe.ToByteArray(), options);
    }

    /// <summary>Images [start, start + count) of a batch as the graph takes them: uint8 pixels and sizes (full
    /// graph) or normalised floats (raw heads).</summary>
    static Dictionary<string, Tensor> Inputs(ModelProto graph, HostBatch host, int start, int count)
    {
        var names = graph.Graph.Input.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        if (names.Contains(OnnxNames.Images))
            return new()
            {
                [OnnxNames.Images] = host.Pixels.narrow(0, start, count),
                [OnnxNames.ImageSizes] = host.Sizes.narrow(0, start, count),
            };
        using var batch = DeviceBatch.From(host, CPU);
        return new() { [OnnxNames.RawInput] = batch.Images.narrow(0, start, count).clone() };
    }
}
