using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Cli;

static class DeviceChoice
{
    /// <summary>--device: cuda when asked or when a GPU exists, else cpu; asking for cuda without one is an error.</summary>
    public static Device Resolve(string? requested)
    {
        bool cuda = torch.cuda.is_available();
        switch (requested?.ToLowerInvariant())
        {
            case null: return cuda ? CUDA : CPU;
            case "cpu": return CPU;
            case "cuda":
                return cuda ? CUDA : throw new UsageException("--device cuda: no CUDA GPU is visible (build with -p:LibTorch=cuda, check nvidia-smi), or use --device cpu");
            default: throw new UsageException($"--device: expected cpu or cuda, got '{requested}'");
        }
    }

    public static int GpuCount() => torch.cuda.is_available() ? torch.cuda.device_count() : 0;
}
