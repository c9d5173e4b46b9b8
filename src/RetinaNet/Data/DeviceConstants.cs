using System.Collections.Concurrent;
using static TorchSharp.torch;

namespace RetinaNet.Data;

/// <summary>Small constant tensors (normalisation mean and std, colour matrices) made once per device. Building them
/// from host arrays inside a step would be a copy from pageable memory, which waits for the device's queue to drain
/// and so stops the host from running ahead of the GPU.</summary>
public static class DeviceConstants
{
    static readonly ConcurrentDictionary<(string Name, string Device), Tensor> cache = new();

    /// <param name="make">builds the constant on the CPU (called once per device).</param>
    public static Tensor Get(string name, Device device, Func<Tensor> make) =>
        cache.GetOrAdd((name, device.ToString()), _ =>
        {
            using var cpu = make();
            return cpu.to(device).DetachFromDisposeScope();
        });
}
