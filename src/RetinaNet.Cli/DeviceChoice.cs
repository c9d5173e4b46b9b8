using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Cli;

static class DeviceChoice
{
    /// <summary>--device: cuda when asked or when a GPU exists, else cpu; asking for cuda without one is an
    /// error.</summary>
    public static Device Resolve(string? requested)
    {
        if (requested?.ToLowerInvariant() is not (null or "cpu" or "cuda"))
            throw new UsageException($"{SharedOptions.Device.Name}: expected cpu or cuda, got '{requested}'");
        try { return Inference.DeviceNames.Parse(requested); }
        catch (ArgumentException e) { throw new UsageException("--" + e.Message); }
    }

    public static int GpuCount() => torch.cuda.is_available() ? torch.cuda.device_count() : 0;
}
