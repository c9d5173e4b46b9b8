using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace RetinaNet.Native;

/// <summary>A tensor's data pointer (TorchSharp has no data_ptr): LibTorchSharp's own export, for native libraries
/// that read or write tensor memory in place (nvJPEG, NCCL).</summary>
public static class TensorMemory
{
    [DllImport("LibTorchSharp")]
    static extern IntPtr THSTensor_data(IntPtr handle);

    /// <summary>Address of the first element (storage offset included).</summary>
    public static IntPtr DataPointer(Tensor t) => THSTensor_data(t.Handle);
}
