namespace RetinaNet.Native;

/// <summary>A CUDA event recorded on libtorch's current stream (the driver's cuEvent calls, which TorchSharp does not
/// wrap): <see cref="Synchronize"/> waits for the work queued before it only, where <c>cuda.synchronize</c> would
/// also wait for what was queued after, so a batch's results can be awaited while the next batch runs. Needs the
/// driver entry points <see cref="CudaKernels"/> resolves.</summary>
public sealed unsafe class CudaEvent : IDisposable
{
    const uint DisableTiming = 2; // CU_EVENT_DISABLE_TIMING: the cheapest event, for waiting only
    IntPtr handle;
    readonly int device;

    CudaEvent(IntPtr handle, int device) => (this.handle, this.device) = (handle, device);

    public static bool Available => CudaKernels.Available;

    /// <summary>An event recorded now on the current stream of device <paramref name="deviceIndex"/>.</summary>
    public static CudaEvent Record(int deviceIndex)
    {
        var api = CudaKernels.Require();
        // the device's context, not merely some context: the current stream's handle is null for the default stream,
        // which means the current context's
        if (CudaDevice.MissingReason is null) CudaDevice.SetCurrent(deviceIndex);
        CudaKernels.EnsureContext(api, deviceIndex);
        IntPtr e;
        CudaKernels.Check(api, api.EventCreate(&e, DisableTiming), "cuEventCreate");
        var recorded = new CudaEvent(e, deviceIndex);
        try
        {
            CudaKernels.Check(api, api.EventRecord(e, CudaGraphs.CurrentStreamHandle(deviceIndex)), "cuEventRecord");
        }
        catch
        {
            recorded.Dispose();
            throw;
        }
        return recorded;
    }

    /// <summary>Waits until the work queued before <see cref="Record"/> has run.</summary>
    public void Synchronize()
    {
        ObjectDisposedException.ThrowIf(handle == IntPtr.Zero, this);
        var api = CudaKernels.Require();
        CudaKernels.EnsureContext(api, device);
        CudaKernels.Check(api, api.EventSynchronize(handle), "cuEventSynchronize");
    }

    public void Dispose()
    {
        if (handle == IntPtr.Zero) return;
        var api = CudaKernels.Require();
        CudaKernels.EnsureContext(api, device);
        api.EventDestroy(handle);
        handle = IntPtr.Zero;
    }
}
