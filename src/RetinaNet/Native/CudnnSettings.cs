namespace RetinaNet.Native;

/// <summary>cuDNN's autotuner flag (<c>torch.backends.cudnn.benchmark</c>), set through libtorch's exported
/// <c>at::globalContext().setBenchmarkCuDNN</c>: with it on, the first convolution of each shape times the
/// candidate algorithms and keeps the fastest.</summary>
public static unsafe class CudnnSettings
{
    public const string GlobalContextSymbol = "_ZN2at13globalContextEv";
    public const string SetBenchmarkSymbol = "_ZN2at7Context17setBenchmarkCuDNNEb";
    public const string BenchmarkSymbol = "_ZNK2at7Context14benchmarkCuDNNEv";

    static readonly Lazy<(IntPtr Context, IntPtr Set, IntPtr Get)> entry = new(() =>
    {
        var (lib, _) = LibTorchLibraries.Find(LibTorchLibraries.PlatformName("torch_cpu"));
        var context = LibTorchLibraries.Export(lib, GlobalContextSymbol);
        return (context == IntPtr.Zero ? IntPtr.Zero : ((delegate* unmanaged<IntPtr>)context)(),
            LibTorchLibraries.Export(lib, SetBenchmarkSymbol), LibTorchLibraries.Export(lib, BenchmarkSymbol));
    });

    public static bool Available => entry.Value.Context != IntPtr.Zero && entry.Value.Set != IntPtr.Zero
        && entry.Value.Get != IntPtr.Zero;

    public static bool Benchmark
    {
        get => ((delegate* unmanaged<IntPtr, byte>)Require().Get)(entry.Value.Context) != 0;
        set => ((delegate* unmanaged<IntPtr, byte, void>)Require().Set)(entry.Value.Context, value ? (byte)1 : (byte)0);
    }

    static (IntPtr Context, IntPtr Set, IntPtr Get) Require() =>
        Available ? entry.Value : throw new NotSupportedException($"libtorch_cpu does not export {SetBenchmarkSymbol}");
}
