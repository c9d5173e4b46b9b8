using TorchSharp;

namespace RetinaNet.Native;

/// <summary>The calling thread's current CUDA device (cudaSetDevice), which TorchSharp does not expose. Tensors name
/// their device themselves, but NCCL binds a communicator to the device current at its creation, nvJPEG and pinned
/// host buffers work on the current device, and a thread that never chose one creates a context on GPU 0 — so
/// with one process per GPU every thread of a rank that touches CUDA makes the rank's GPU current first.
/// <para>Resolved from the libraries libtorch loaded: c10's <c>SetDevice(DeviceIndex, bool force)</c>, its older
/// one-argument form, else the CUDA runtime's <c>cudaSetDevice</c>.</para></summary>
public static unsafe class CudaDevice
{
    const string SetDeviceForced = "_ZN3c104cuda9SetDeviceEab", SetDeviceOld = "_ZN3c104cuda9SetDeviceEa";

    sealed class Entry
    {
        public delegate* unmanaged<sbyte, byte, int> C10Forced;
        public delegate* unmanaged<sbyte, int> C10;
        public delegate* unmanaged<int, int> CudaRuntime;
    }

    static readonly Lazy<(Entry? Entry, string? Missing)> resolved = new(Resolve);

    /// <summary>Why the current device cannot be set here (no CUDA, or no entry point found), or null.</summary>
    public static string? MissingReason => resolved.Value.Missing;

    /// <summary>Makes CUDA device <paramref name="index"/> current on the calling thread.</summary>
    public static void SetCurrent(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        var entry = resolved.Value.Entry
            ?? throw new NotSupportedException($"cannot choose the CUDA device: {MissingReason}");
        int error = entry.C10Forced is not null ? entry.C10Forced((sbyte)index, 1)
            : entry.C10 is not null ? entry.C10((sbyte)index)
            : entry.CudaRuntime(index);
        if (error != 0) throw new InvalidOperationException($"cudaSetDevice({index}) failed with CUDA error {error}");
    }

    static (Entry?, string?) Resolve()
    {
        if (!torch.cuda.is_available()) return (null, "no CUDA device is visible");
        var (c10, _) = LibTorchLibraries.Find(LibTorchLibraries.PlatformName("c10_cuda"));
        if (LibTorchLibraries.Export(c10, SetDeviceForced) is var forced && forced != IntPtr.Zero)
            return (new Entry { C10Forced = (delegate* unmanaged<sbyte, byte, int>)forced }, null);
        if (LibTorchLibraries.Export(c10, SetDeviceOld) is var old && old != IntPtr.Zero)
            return (new Entry { C10 = (delegate* unmanaged<sbyte, int>)old }, null);
        foreach (var cudart in new[] { "libcudart.so.13", "libcudart.so.12", "libcudart.so" })
            if (LibTorchLibraries.Export(LibTorchLibraries.Find(cudart).Handle, "cudaSetDevice") is var runtime
                && runtime != IntPtr.Zero)
                return (new Entry { CudaRuntime = (delegate* unmanaged<int, int>)runtime }, null);
        return (null,
            $"neither libc10_cuda ({SetDeviceForced}, {SetDeviceOld}) nor libcudart (cudaSetDevice) is loaded with its "
            + "entry point");
    }
}
