using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;
using RetinaNet.Export;

namespace RetinaNet.Inference.Onnx;

/// <summary>TensorRT is not usable here; the message says exactly what is missing.</summary>
public sealed class TensorRtUnavailableException(string message) : Exception(message);

/// <summary><c>export MODEL OUT.plan</c>: builds the TensorRT engine through ONNX Runtime's TensorRT execution
/// provider and writes an EP-context model to OUT (ONNX with one EPContext node that embeds the serialised engine,
/// plus our metadata), which <c>infer OUT.plan</c> runs without rebuilding. It is not a bare engine for ODTK's C++
/// runtime.</summary>
public static class TensorRtEngine
{
    /// <summary>Throws, naming what is missing, unless an engine can be built here.</summary>
    public static void EnsureAvailable(string enginePath)
    {
        if (TensorRtAvailability.Missing() is string missing)
            throw new TensorRtUnavailableException($"{enginePath}: cannot build a TensorRT engine: {missing}; or "
                + "export to an .onnx name");
    }

    public static void Build(ModelProto model, string enginePath, OrtExecution execution, TextWriter notes)
    {
        EnsureAvailable(enginePath);
        var work = Directory.CreateTempSubdirectory("retinanet-trt-");
        try
        {
            var onnxPath = Path.Combine(work.FullName, "model.onnx");
            OnnxExporter.Save(model, onnxPath);
            var contextPath = Path.Combine(work.FullName, "model_ctx.onnx");
            var shapes = InputShapes(model);
            var trt = execution with { EngineContextPath = contextPath, CacheDirectory = execution.CacheDirectory
                ?? Path.Combine(work.FullName, "cache") };
            using (var options = new SessionOptions())
            {
                using var provider = new OrtTensorRTProviderOptions();
                provider.UpdateOptions(OrtSessions.TensorRtSettings(trt, shapes));
                options.AppendExecutionProvider_Tensorrt(provider);
                notes.WriteLine("Building the TensorRT engine (batch "
                    + $"{execution.BatchProfile.Min}..{execution.BatchProfile.Max}, "
                    + $"{(execution.Int8 ? "int8" : execution.Fp16 ? "fp16" : "fp32")}): this takes minutes");
                using var session = new InferenceSession(onnxPath, options); // the build happens here
            }
            if (!File.Exists(contextPath))
                throw new TensorRtUnavailableException($"{enginePath}: ONNX Runtime built no engine context model (is "
                    + "the whole graph supported by TensorRT? run with --verbose)");
            // The context model keeps our metadata, so infer knows the input size and classes.
            var context = OnnxExporter.Load(contextPath);
            context.MetadataProps.Clear();
            context.MetadataProps.Add(model.MetadataProps);
            OnnxExporter.Save(context, enginePath);
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    /// <summary>Graph input name → shape (symbolic dimensions as -1), for TensorRT's optimisation profile.</summary>
    public static Dictionary<string, long[]> InputShapes(ModelProto model) =>
        model.Graph.Input.Where(i => model.Graph.Initializer.All(t => t.Name != i.Name))
            .ToDictionary(i => i.Name,
            i => i.Type.TensorType.Shape.Dim.Select(d => d.HasDimValue ? d.DimValue : -1L).ToArray());
}
