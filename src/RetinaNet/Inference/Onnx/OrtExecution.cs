using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;

namespace RetinaNet.Inference.Onnx;

/// <summary>How ONNX Runtime runs an exported model. On a GPU: TensorRT first (FP16/INT8 flags, engine and timing
/// caches in <see cref="CacheDirectory"/>, a batch profile for the symbolic batch), then CUDA, then the CPU.</summary>
public sealed record OrtExecution
{
    public bool Gpu { get; init; }
    public int DeviceId { get; init; }
    public bool Fp16 { get; init; } = true;
    /// <summary>TensorRT INT8 (models with QuantizeLinear/DequantizeLinear need no calibration table).</summary>
    public bool Int8 { get; init; }
    public string? CalibrationTable { get; init; }
    /// <summary>TensorRT engine and timing caches: the first run builds, later runs load.</summary>
    public string? CacheDirectory { get; init; }
    /// <summary>Batch sizes of TensorRT's optimisation profile (min, opt, max).</summary>
    public (int Min, int Opt, int Max) BatchProfile { get; init; } = (1, 1, 1);
    /// <summary>Export to .plan/.engine: write an EP-context model here that embeds the built engine.</summary>
    public string? EngineContextPath { get; init; }
    public bool Verbose { get; init; }
}

/// <summary>Whether ONNX Runtime's TensorRT execution provider can run here, and if not, exactly what is
/// missing.</summary>
public static class TensorRtAvailability
{
    public const string Provider = "TensorrtExecutionProvider", CudaProvider = "CUDAExecutionProvider";
    public const string Library = "libnvinfer.so.10";

    public static string? Missing() => Missing(OrtEnv.Instance().GetAvailableProviders(), CanLoad);

    /// <summary>null when TensorRT can be tried; otherwise one sentence naming what is missing and how to get
    /// it.</summary>
    public static string? Missing(IReadOnlyCollection<string> providers, Func<string, bool> canLoad)
    {
        if (!providers.Contains(Provider))
            return "this build's ONNX Runtime (Microsoft.ML.OnnxRuntime, CPU only) has no TensorRT execution " +
                "provider: build with -p:OnnxRuntime=gpu (Microsoft.ML.OnnxRuntime.Gpu.Linux) " +
                "on a machine with CUDA 12 and TensorRT 10";
        if (!canLoad(Library))
            return $"{Library} (TensorRT 10) could not be loaded: " +
                "install TensorRT 10 and put its lib directory on LD_LIBRARY_PATH";
        return null;
    }

    static bool CanLoad(string library)
    {
        if (!NativeLibrary.TryLoad(library, out var handle)) return false;
        NativeLibrary.Free(handle);
        return true;
    }
}

/// <summary>Creates ONNX Runtime sessions, falling back provider by provider with a one-line note on
/// <c>notes</c>.</summary>
public static class OrtSessions
{
    public static InferenceSession Create(string modelPath, OrtExecution execution, TextWriter notes,
        IReadOnlyDictionary<string, long[]>? inputShapes = null)
    {
        if (execution.Gpu)
        {
            if (TensorRtAvailability.Missing() is string missing)
                notes.WriteLine($"note: TensorRT not used: {missing}");
            else if (TryCreate(modelPath, () => TensorRt(execution, inputShapes), "TensorRT", notes)
                is InferenceSession trt)
                return trt;
            if (!OrtEnv.Instance().GetAvailableProviders().Contains(TensorRtAvailability.CudaProvider))
                notes.WriteLine("note: this build's ONNX Runtime has no CUDA execution provider " +
                    "(build with -p:OnnxRuntime=gpu); running on the CPU");
            else if (TryCreate(modelPath, () => Cuda(execution), "CUDA", notes) is InferenceSession cuda) return cuda;
        }
        try { return new InferenceSession(modelPath, Options(execution)); }
        catch (OnnxRuntimeException e)
        {
            throw new InvalidDataException($"{modelPath}: ONNX Runtime cannot run it: {FirstLine(e)}");
        }
    }

    static string FirstLine(Exception e) => e.Message.Split('\n')[0].Trim();

    static InferenceSession? TryCreate(string modelPath, Func<SessionOptions> options, string provider,
        TextWriter notes)
    {
        SessionOptions? o = null;
        try
        {
            o = options();
            return new InferenceSession(modelPath, o);
        }
        catch (Exception e) when (e is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException)
        {
            notes.WriteLine($"note: the {provider} execution provider failed ({FirstLine(e)}); falling back");
            o?.Dispose();
            return null;
        }
    }

    static SessionOptions Options(OrtExecution execution) => new()
    {
        LogSeverityLevel = execution.Verbose ? OrtLoggingLevel.ORT_LOGGING_LEVEL_INFO
            : OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING,
        GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
    };

    static SessionOptions Cuda(OrtExecution execution)
    {
        var options = Options(execution);
        options.AppendExecutionProvider_CUDA(execution.DeviceId);
        return options;
    }

    static SessionOptions TensorRt(OrtExecution execution, IReadOnlyDictionary<string, long[]>? inputShapes)
    {
        var options = Options(execution);
        using var trt = new OrtTensorRTProviderOptions();
        trt.UpdateOptions(TensorRtSettings(execution, inputShapes));
        options.AppendExecutionProvider_Tensorrt(trt);
        options.AppendExecutionProvider_CUDA(execution.DeviceId); // what TensorRT does not take runs on CUDA
        return options;
    }

    /// <summary>ONNX Runtime's TensorRT provider options for this execution.</summary>
    public static Dictionary<string, string> TensorRtSettings(OrtExecution execution,
        IReadOnlyDictionary<string, long[]>? inputShapes)
    {
        static string Flag(bool on) => on ? "1" : "0";
        var settings = new Dictionary<string, string>
        {
            ["device_id"] = execution.DeviceId.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["trt_fp16_enable"] = Flag(execution.Fp16),
            ["trt_int8_enable"] = Flag(execution.Int8),
            ["trt_detailed_build_log"] = Flag(execution.Verbose),
        };
        if (execution.CalibrationTable is string table) settings["trt_int8_calibration_table_name"] = table;
        if (execution.CacheDirectory is string cache)
        {
            Directory.CreateDirectory(cache);
            settings["trt_engine_cache_enable"] = "1";
            settings["trt_engine_cache_path"] = cache;
            settings["trt_timing_cache_enable"] = "1";
            settings["trt_timing_cache_path"] = cache;
        }
        if (inputShapes is not null)
        {
            // Per input "name:BxDxD": the batch dimension from the profile, the rest fixed.
            string Shapes(int batch) => string.Join(",", inputShapes.Select(kv =>
                $"{kv.Key}:{string.Join("x", kv.Value.Select((d, i) => i == 0 ? batch : d))}"));
            settings["trt_profile_min_shapes"] = Shapes(execution.BatchProfile.Min);
            settings["trt_profile_opt_shapes"] = Shapes(execution.BatchProfile.Opt);
            settings["trt_profile_max_shapes"] = Shapes(execution.BatchProfile.Max);
        }
        if (execution.EngineContextPath is string context)
        {
            settings["trt_dump_ep_context_model"] = "1";
            settings["trt_ep_context_file_path"] = context;
            settings["trt_ep_context_embed_mode"] = "1";
        }
        return settings;
    }
}
