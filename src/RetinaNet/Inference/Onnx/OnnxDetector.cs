using Microsoft.ML.OnnxRuntime;
using RetinaNet.Data.Loading;
using RetinaNet.Export;
using RetinaNet.Model;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace RetinaNet.Inference.Onnx;

/// <summary>What an exported detector file says about itself: fixed input size, classes, precision (fp32, fp16, int8);
/// <see cref="HasEngine"/>: an EP-context model from <c>export OUT.plan</c>, which only TensorRT runs;
/// <see cref="Resize"/> and <see cref="MaxSize"/>: the checkpoint's input scale (null in older exports).</summary>
public sealed record ExportedDetector(int Height, int Width, int Classes, string Precision, bool HasEngine,
    int? Resize = null, int? MaxSize = null)
{
    /// <summary>The training categories in class order (empty in older exports).</summary>
    public IReadOnlyList<Category> Categories { get; init; } = [];

    /// <summary>The settings the file holds: its input scale (the defaults in older exports); post-processing is part
    /// of the graph.</summary>
    public InferenceConfig StoredSettings
    {
        get
        {
            var d = new InferenceConfig();
            return d with { Resize = Resize ?? d.Resize, MaxSize = MaxSize ?? d.MaxSize };
        }
    }
}

/// <summary>An exported detector (<c>retinanet export</c> without --raw-heads) run by ONNX Runtime: the loader's uint8
/// host batch and image sizes go in as they are (the graph normalises and masks the padding as
/// <see cref="DeviceBatch"/>), boxes/scores/classes come out and are mapped back by
/// <see cref="DetectionMapping"/>.</summary>
public sealed class OnnxDetector : IDetector
{
    readonly InferenceSession session;

    OnnxDetector(InferenceSession session, ExportedDetector info, InferenceConfig settings) =>
        (this.session, Classes, InputSize, Settings, Categories) =
            (session, info.Classes, (info.Height, info.Width), settings, info.Categories);

    public int Classes { get; }
    public (int Height, int Width)? InputSize { get; }
    /// <summary>The input scale to use; post-processing is fixed in the graph (its values are in the
    /// metadata).</summary>
    public InferenceConfig Settings { get; }
    public IReadOnlyList<Category> Categories { get; }

    /// <summary>An exported model (described by <paramref name="info"/>) as a run wants it: on a GPU TensorRT (engine
    /// and timing caches in the model's folder, NAME.trt-cache/, a batch profile up to
    /// <see cref="ExecutionOptions.MaxBatch"/>), then CUDA, then the CPU; <paramref name="settings"/>: the input
    /// scale to use.</summary>
    public static OnnxDetector Open(string path, ExportedDetector info, ExecutionOptions run, InferenceConfig settings,
        TextWriter notes)
    {
        settings.Validate();
        var execution = new OrtExecution
        {
            Gpu = run.Device.type == TorchSharp.DeviceType.CUDA,
            DeviceId = Math.Max(0, (int)run.Device.index),
            Fp16 = !run.FullPrecision,
            Int8 = info.Precision == "int8",
            CacheDirectory = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!,
                Path.GetFileNameWithoutExtension(path) + ".trt-cache"),
            BatchProfile = (1, run.MaxBatch, run.MaxBatch),
        };
        return Open(path, info, execution, notes, settings);
    }

    /// <summary>Providers chosen by <see cref="OrtSessions"/>, in order of preference.</summary>
    public static OnnxDetector Open(string path, OrtExecution execution, TextWriter notes)
    {
        var info = Describe(path);
        return Open(path, info, execution, notes, info.StoredSettings);
    }

    static OnnxDetector Open(string path, ExportedDetector info, OrtExecution execution, TextWriter notes,
        InferenceConfig settings)
    {
        if (info.HasEngine
            && (execution.Gpu ? TensorRtAvailability.Missing()
            : "it runs on a GPU only (--device cuda)") is string missing)
            throw new TensorRtUnavailableException($"{path} holds a TensorRT engine: {missing}");
        var shapes = new Dictionary<string, long[]> { [OnnxNames.Images] = [-1, 3, info.Height, info.Width],
            [OnnxNames.ImageSizes] = [-1, 2] };
        var session = OrtSessions.Create(path, execution, notes, shapes);
        return new OnnxDetector(session, info, settings);
    }

    /// <summary>Input size and class count of an exported detector, read from the file; one clear line when it is not
    /// one.</summary>
    public static ExportedDetector Describe(string path)
    {
        var model = OnnxExporter.Load(path);
        var meta = model.MetadataProps.ToDictionary(p => p.Key, p => p.Value);
        var dims = model.Graph.Input.FirstOrDefault(i => i.Name == OnnxNames.Images)?.Type?.TensorType?.Shape?.Dim;
        var file = RetinaNet.OnnxRuntime.ExportedFile.Describe(path, meta, dims?.Select(d => d.DimValue).ToList());
        return new(file.Height, file.Width, file.Classes, file.Precision,
            model.Graph.Node.Any(n => n.OpType == "EPContext"),
            file.Resize, file.MaxSize) { Categories = file.Categories };
    }

    public IReadOnlyList<ImageDetections> Detect(HostBatch host)
    {
        if (host.Count == 0) return [];
        using var scope = NewDisposeScope();
        var outputs = OrtTensors.Run(session,
            new Dictionary<string, Tensor> { [OnnxNames.Images] = host.Pixels, [OnnxNames.ImageSizes] = host.Sizes },
            [OnnxNames.Boxes, OnnxNames.Scores, OnnxNames.Classes]);
        return DetectionMapping.ToImages(outputs[OnnxNames.Scores], outputs[OnnxNames.Boxes],
            outputs[OnnxNames.Classes], null, host);
    }

    public void Dispose() => session.Dispose();
}
