using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Inference;

/// <summary>Devices by name, as users write them: cpu, cuda, cuda:N; none: a GPU when one is visible.</summary>
public static class DeviceNames
{
    /// <exception cref="ArgumentException">An unknown name, or a GPU that is not there (the message says what to
    /// do).</exception>
    public static Device Parse(string? name)
    {
        bool cuda = torch.cuda.is_available();
        var lower = name?.Trim().ToLowerInvariant();
        if (lower is null) return cuda ? CUDA : CPU;
        if (lower == "cpu") return CPU;
        if (lower == "cuda" || lower.StartsWith("cuda:"))
        {
            if (!cuda)
                throw new ArgumentException($"device {name}: no CUDA GPU is visible (build with -p:LibTorch=cuda, "
                    + "check nvidia-smi), or use cpu");
            if (lower == "cuda") return CUDA;
            if (!int.TryParse(lower["cuda:".Length..], out int index) || index < 0
                || index >= torch.cuda.device_count())
                throw new ArgumentException($"device {name}: expected cuda:N with N below {torch.cuda.device_count()}, "
                    + "the visible GPUs");
            return new Device(DeviceType.CUDA, index);
        }
        throw new ArgumentException($"device: expected cpu, cuda or cuda:N, got '{name}'");
    }
}
