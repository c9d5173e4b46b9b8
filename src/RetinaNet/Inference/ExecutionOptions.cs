using RetinaNet.Inference.Onnx;
using RetinaNet.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Inference;

/// <summary>How a model file runs: the device, full precision or not, CUDA graphs, and the largest batch it will be
/// given (an exported model's TensorRT profile).</summary>
public sealed record ExecutionOptions(Device Device, bool FullPrecision = false, bool CudaGraphs = false,
    int MaxBatch = 8)
{
    /// <summary>bf16 on a GPU (faster than fp16 with loss scaling and as accurate: bench/RESULTS.md); none on the CPU,
    /// where autocast is slower than fp32, or with full precision. Training and inference both use it.</summary>
    public static ScalarType? MixedPrecisionFor(Device device, bool fullPrecision) =>
        fullPrecision || device.type != DeviceType.CUDA ? null : ScalarType.BFloat16;

    public ScalarType? MixedPrecision => MixedPrecisionFor(Device, FullPrecision);

    /// <summary>Our kernels and their choices for a checkpoint's model (benchmarks compare them); null: the
    /// defaults.</summary>
    public Native.KernelOptions? Kernels { get; init; }
}

/// <summary>Model files: checkpoints (.pth, .safetensors) run by TorchSharp, exports (.onnx, .plan, .engine) by ONNX
/// Runtime, opened behind one <see cref="IDetector"/>.</summary>
public static class ModelFiles
{
    public static readonly string[] CheckpointExtensions = [".pth", ".safetensors"];
    public static readonly string[] ExportedExtensions = [".onnx", ".plan", ".engine"];

    public static bool IsExported(string path) =>
        ExportedExtensions.Any(e => path.EndsWith(e, StringComparison.OrdinalIgnoreCase));

    /// <summary>Opens <paramref name="path"/> to run as <paramref name="run"/> says. <paramref name="settings"/> maps
    /// the model's stored settings to the run's (options given win); an exported model's post-processing is part of
    /// its graph, so there only the input scale may change.</summary>
    public static IDetector Open(string path, ExecutionOptions run, Func<InferenceConfig, InferenceConfig> settings,
        TextWriter notes)
    {
        if (!IsExported(path)) return CheckpointDetector.Load(path, run, settings);
        var info = OnnxDetector.Describe(path);
        var baked = info.StoredSettings;
        var wanted = settings(baked);
        if (wanted with { Resize = baked.Resize, MaxSize = baked.MaxSize } != baked)
            throw new ArgumentException($"{path}: post-processing is part of an exported model; set it when exporting");
        return OnnxDetector.Open(path, info, run, wanted, notes);
    }

    /// <summary>ODTK's <c>--rotated-bbox</c> says what the model is: one line when the model at
    /// <paramref name="path"/> says otherwise.</summary>
    public static void CheckRotated(string path, bool modelRotated, bool flagGiven)
    {
        if (modelRotated && !flagGiven)
            throw new ArgumentException($"{path} is a rotated-box model: pass --rotated-bbox");
        if (!modelRotated && flagGiven)
            throw new ArgumentException($"{path} is an axis-aligned model: leave out --rotated-bbox");
    }
}

/// <summary>A checkpoint's model and its runner, owned together.</summary>
public sealed class CheckpointDetector : IDetector
{
    readonly RetinaNetModel model;
    readonly DetectionRunner runner;

    CheckpointDetector(RetinaNetModel model, DetectionRunner runner) => (this.model, this.runner) = (model, runner);

    /// <summary>The checkpoint on the run's device with what <paramref name="settings"/> makes of its stored settings;
    /// with mixed precision its weights are converted (bf16 weights and NHWC beat autocast:
    /// bench/RESULTS.md).</summary>
    public static CheckpointDetector Load(string path, ExecutionOptions run,
        Func<InferenceConfig, InferenceConfig> settings)
    {
        var model = Checkpoints.Checkpoint.Load(path).Model;
        try
        {
            model.UseInferenceSettings(settings(model.Config.Inference));
            if (run.Kernels is { } kernels) model.UseKernels(kernels);
            model.to(run.Device);
            // the conversion below: low-precision weights, channels-last
            model.PrepareForInference(run.MixedPrecision, channelsLast: run.MixedPrecision is not null);
            if (run.MixedPrecision is ScalarType low)
            {
                model.to(low);
                Layouts.ToChannelsLast(model);
            }
            return new CheckpointDetector(model,
                new DetectionRunner(model, run.Device, run.MixedPrecision, run.CudaGraphs));
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public InferenceConfig Settings => model.Config.Inference;
    /// <summary>The kernels the model runs with (<see cref="ExecutionOptions.Kernels"/>, else the defaults).</summary>
    public Native.KernelOptions Kernels => model.Kernels;
    public IReadOnlyList<Category> Categories => model.Config.Categories;
    public int Classes => runner.Classes;
    public bool Rotated => runner.Rotated;
    public (int Height, int Width)? InputSize => runner.InputSize;
    public IReadOnlyList<ImageDetections> Detect(Data.Loading.HostBatch host) => runner.Detect(host);
    public PendingDetections Submit(Data.Loading.HostBatch host) => runner.Submit(host);
    public void Dispose() { runner.Dispose(); model.Dispose(); }
}
