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
            throw new UsageException($"--device: expected cpu or cuda, got '{requested}'");
        try { return Inference.DeviceNames.Parse(requested); }
        catch (ArgumentException e) { throw new UsageException("--" + e.Message); }
    }

    public static int GpuCount() => torch.cuda.is_available() ? torch.cuda.device_count() : 0;

    /// <summary>A rank's device: the CPU when asked, else the GPU LOCAL_RANK (GPU 0 when the rank sees only one, as
    /// under SLURM's per-task GPU binding).</summary>
    public static Device ForRank(string? requested, int? localRank, int visibleGpus)
    {
        var device = Resolve(requested);
        if (device.type != DeviceType.CUDA) return device;
        if (visibleGpus == 1) return new Device(DeviceType.CUDA, 0);
        if (localRank is not int index)
            throw new UsageException($"LOCAL_RANK is not set and {visibleGpus} GPUs are visible: set LOCAL_RANK to this rank's GPU on its machine, or give each rank one GPU (CUDA_VISIBLE_DEVICES)");
        if (index >= visibleGpus) throw new UsageException($"LOCAL_RANK={index}, but only {visibleGpus} GPUs are visible on this machine");
        return new Device(DeviceType.CUDA, index);
    }
}
