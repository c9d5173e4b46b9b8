using RetinaNet.Model;
using RetinaNet.Native;
using static TorchSharp.torch;

namespace RetinaNet.Inference;

/// <summary>Pays libtorch's first use of a GPU's convolutions (cuDNN's libraries loaded, a handle made, the kernels of
/// a small channels-last convolution loaded) on a thread of its own while a checkpoint loads from disk, instead of in
/// the first batch (bench/RESULTS.md, "first batch"). The thread ends when done, so its cuDNN handle returns to
/// libtorch's pool for the model's thread to take.</summary>
public static class GpuWarmup
{
    /// <summary>Starts the warm-up on <paramref name="device"/> (a CUDA device) in <paramref name="dtype"/>; join
    /// the thread before the first batch. A failure is ignored: the model's own first use reports it.</summary>
    public static Thread Start(Device device, ScalarType dtype)
    {
        var thread = new Thread(() =>
        {
            try
            {
                CudaDevice.SetCurrent(device.index < 0 ? 0 : device.index);
                using var scope = NewDisposeScope();
                using var noGrad = no_grad();
                var x = Layouts.NhwcCopy(ones(2, 16, 64, 64, dtype, device));
                var w = Layouts.NhwcCopy(ones(16, 16, 3, 3, dtype, device));
                nn.functional.relu(nn.functional.conv2d(x, w, padding: [1, 1]));
                cuda.synchronize(device);
            }
            catch (Exception) { } // an optimisation only
        }) { IsBackground = true, Name = "retinanet-gpu-warmup" };
        thread.Start();
        return thread;
    }
}
