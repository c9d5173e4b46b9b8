using System.Runtime.InteropServices;

namespace RetinaNet.Native;

/// <summary>libtorch CPU settings that CPU training needs to be correct, and CPU work to be quiet.
/// <para>oneDNN's convolution backward is wrong in the libtorch we ship (2.10, oneDNN 3.7.1): for a convolution
/// whose output channel count is not a multiple of oneDNN's channel block (3, 24, 27, 36, ...), the gradient with
/// respect to the input is off by the size of the gradient itself, deterministically where the padding of the
/// blocked layout happens to be zero, and NaN or seed-to-seed different where it holds what freed memory left
/// there. RetinaNet's output convolutions (9 anchors x 3 classes = 27, 9 x 4 = 36) feed every trainable layer
/// below them, so CPU training learned nothing or stopped on a NaN. It depends on the machine: wrong on this
/// workplace's 2-core AMD EPYC, right on the GPU machine's 16-core Xeon (2026-12-02, bench/RESULTS.md), so no test
/// can pin it everywhere; training turns oneDNN off on every machine (one numeric path), and
/// tests/RetinaNet.Tests/Native/CpuNumericsTests checks the gradients it then gets against float64. The forward pass
/// is right, so only training turns oneDNN off, while a <see cref="ExactGradients"/> scope is open; convolutions then
/// run libtorch's own kernels.</para>
/// <para>The switch is libtorch's and process-wide, so CPU inference in a process that trains meanwhile runs the
/// same kernels (slower, equal to rounding). No per-call choice exists. Channels-last input would keep oneDNN on
/// (its NHWC input gradients are right for every channel count above), but its training-mode 1x1 convolutions
/// stop the process with SIGFPE (oneDNN's brgemm 1x1 blocking heuristic) in ResNet-50 on AMD EPYC (2026-12-02).</para>
/// <para>NNPACK stays off: libtorch tries it where oneDNN is off and, on CPUs it does not support, prints
/// "Could not initialize NNPACK! Reason: Unsupported hardware." once per convolution.</para></summary>
public static unsafe class CpuNumerics
{
    public const string SetMkldnnSymbol = "_ZN2at7Context20setUserEnabledMkldnnEb";
    public const string MkldnnSymbol = "_ZNK2at7Context17userEnabledMkldnnEv";
    public const string SetNnpackSymbol = "_ZN2at7Context20setUserEnabledNNPACKEb";
    public const string JunkFillFlag = "FLAGS_caffe2_cpu_allocator_do_junk_fill";

    sealed record Entries(IntPtr Context, IntPtr SetMkldnn, IntPtr Mkldnn, IntPtr SetNnpack, IntPtr JunkFill)
    {
        public bool Complete => Context != IntPtr.Zero && SetMkldnn != IntPtr.Zero && Mkldnn != IntPtr.Zero
            && SetNnpack != IntPtr.Zero && JunkFill != IntPtr.Zero;
    }

    static readonly Lazy<Entries> entries = new(() =>
    {
        var (torchCpu, _) = LibTorchLibraries.Find(LibTorchLibraries.PlatformName("torch_cpu"));
        var (c10, _) = LibTorchLibraries.Find(LibTorchLibraries.PlatformName("c10"));
        var context = LibTorchLibraries.Export(torchCpu, CudnnSettings.GlobalContextSymbol);
        return new(context == IntPtr.Zero ? IntPtr.Zero : ((delegate* unmanaged<IntPtr>)context)(),
            LibTorchLibraries.Export(torchCpu, SetMkldnnSymbol), LibTorchLibraries.Export(torchCpu, MkldnnSymbol),
            LibTorchLibraries.Export(torchCpu, SetNnpackSymbol), LibTorchLibraries.Export(c10, JunkFillFlag));
    });

    static readonly Lock gate = new();
    static int trainers;

    /// <summary>Whether this libtorch exports every entry point used here (a test fails loudly if not).</summary>
    public static bool Available => entries.Value.Complete;

    /// <summary>Turns NNPACK off (cheap; every model construction calls it). False where an entry point is
    /// missing.</summary>
    public static bool Ensure()
    {
        var e = entries.Value;
        if (!e.Complete) return false;
        ((delegate* unmanaged<IntPtr, byte, void>)e.SetNnpack)(e.Context, 0);
        return true;
    }

    /// <summary>Whether libtorch may use oneDNN (its default) now.</summary>
    public static bool OneDnnEnabled
        => ((delegate* unmanaged<IntPtr, byte>)Require().Mkldnn)(entries.Value.Context) != 0;

    /// <summary>oneDNN off for as long as any scope is open (scopes may overlap, e.g. trainings on two threads),
    /// back on when the last one closes.</summary>
    public static IDisposable ExactGradients()
    {
        var e = Require();
        lock (gate)
        {
            if (trainers++ == 0) ((delegate* unmanaged<IntPtr, byte, void>)e.SetMkldnn)(e.Context, 0);
        }
        return new Scope();
    }

    sealed class Scope : IDisposable
    {
        int disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref disposed, 1) != 0) return;
            var e = entries.Value;
            lock (gate)
            {
                if (--trainers == 0) ((delegate* unmanaged<IntPtr, byte, void>)e.SetMkldnn)(e.Context, 1);
            }
        }
    }

    /// <summary>libtorch's debugging aid: every new CPU allocation filled with a NaN pattern, so a read of memory
    /// nobody wrote shows at once. Tests switch it on around training; off again with false.</summary>
    public static void JunkFill(bool on) => Marshal.WriteByte(Require().JunkFill, on ? (byte)1 : (byte)0);

    static Entries Require() => entries.Value.Complete ? entries.Value
        : throw new NotSupportedException($"this libtorch lacks one of {SetMkldnnSymbol}, {MkldnnSymbol}, "
        + $"{SetNnpackSymbol}, {JunkFillFlag}");
}
