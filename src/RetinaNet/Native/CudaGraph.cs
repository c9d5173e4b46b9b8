using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Native;

/// <summary>libtorch's CUDA graphs (<c>at::cuda::CUDAGraph</c>, what <c>torch.cuda.CUDAGraph</c> wraps) and its
/// current-stream switch, through the C++ entry points exported by libtorch_cuda / libc10_cuda, which TorchSharp does
/// not wrap. A captured graph replays a whole sequence of kernels with one launch: at batch 1 the detector is bound by
/// launching ~1,000 small kernels, not by arithmetic.
/// <para>Capture runs on a side stream (libtorch refuses the default stream); tensors allocated while capturing
/// come from the graph's private memory pool and are overwritten in place by every replay. Replay runs on the
/// current stream, ordered with the work around it.</para></summary>
public static unsafe class CudaGraphs
{
    // at::cuda::CUDAGraph (PyTorch >= 2.8 takes keep_graph; older ones take nothing).
    public static readonly string[] ConstructorSymbols = ["_ZN2at4cuda9CUDAGraphC1Eb", "_ZN2at4cuda9CUDAGraphC1Ev"];
    public const string DestructorSymbol = "_ZN2at4cuda9CUDAGraphD1Ev";
    // capture_begin(MempoolId_t pool = {0, 0}, cudaStreamCaptureMode mode); MempoolId_t = std::pair<ull, ull>
    public const string CaptureBeginSymbol = "_ZN2at4cuda9CUDAGraph13capture_beginESt4pairIyyE21cudaStreamCaptureMode";
    public const string CaptureEndSymbol = "_ZN2at4cuda9CUDAGraph11capture_endEv";
    public const string ReplaySymbol = "_ZN2at4cuda9CUDAGraph6replayEv";
    // MempoolId_t graph_pool_handle(): a new memory pool id that several captures can share
    public const string PoolHandleSymbol = "_ZN2at4cuda17graph_pool_handleEv";
    // c10::cuda streams: CUDAStream is 16 bytes (Device{int8 type, int8 index}, int64 id), trivially copyable, so it
    // travels in two integer registers both as argument and as return value (SysV x86-64).
    public static readonly string[] StreamFromPoolSymbols = ["_ZN3c104cuda17getStreamFromPoolEba",
        "_ZN3c104cuda17getStreamFromPoolEia"];
    public const string GetCurrentStreamSymbol = "_ZN3c104cuda20getCurrentCUDAStreamEa";
    public const string SetCurrentStreamSymbol = "_ZN3c104cuda20setCurrentCUDAStreamENS0_10CUDAStreamE";
    // cudaStream_t CUDAStream::stream() const
    public const string StreamHandleSymbol = "_ZNK3c104cuda10CUDAStream6streamEv";

    /// <summary>Bytes reserved for one CUDAGraph object: its real size varies by version (a few hundred
    /// bytes).</summary>
    const int ObjectBytes = 8192;
    // loader threads may pin memory meanwhile: only this thread's calls are checked
    const int CaptureModeThreadLocal = 1;

    [StructLayout(LayoutKind.Sequential)]
    public struct CudaStream { public long Device, Id; }

    /// <summary>A memory pool of captured graphs (libtorch's <c>MempoolId_t</c>, a pair of 64-bit ids).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public readonly record struct MemoryPool(ulong First, ulong Second);

    internal sealed class Entry
    {
        public delegate* unmanaged<IntPtr, byte, void> Construct;
        public delegate* unmanaged<IntPtr, void> Destruct;
        public delegate* unmanaged<IntPtr, ulong, ulong, int, void> CaptureBegin;
        public delegate* unmanaged<IntPtr, void> CaptureEnd;
        public delegate* unmanaged<IntPtr, void> Replay;
        public delegate* unmanaged<MemoryPool> PoolHandle;
        public delegate* unmanaged<byte, sbyte, CudaStream> StreamFromPool;
        public delegate* unmanaged<sbyte, CudaStream> GetCurrentStream;
        public delegate* unmanaged<CudaStream, void> SetCurrentStream;
        public delegate* unmanaged<CudaStream*, IntPtr> StreamHandle;
    }

    static readonly Lazy<(Entry? Entry, string? Missing)> resolved = new(Resolve);

    public static bool Available => resolved.Value.Entry is not null;
    public static bool StreamHandleAvailable => resolved.Value.Entry is { } e && e.StreamHandle != null;
    public static string? MissingReason => resolved.Value.Missing;

    static Entry Require() => resolved.Value.Entry
        ?? throw new NotSupportedException($"CUDA graphs are unavailable: {MissingReason}");

    /// <summary>A stream of libtorch's pool for <paramref name="deviceIndex"/> (not the default stream).</summary>
    public static CudaStream SideStream(int deviceIndex) => Require().StreamFromPool(0, (sbyte)deviceIndex);

    /// <summary>Makes <paramref name="stream"/> (a pooled side stream of <paramref name="deviceIndex"/> when null)
    /// current on this thread until disposed.</summary>
    public static IDisposable UseSideStream(int deviceIndex, CudaStream? stream = null)
    {
        var e = Require();
        var previous = e.GetCurrentStream((sbyte)deviceIndex);
        e.SetCurrentStream(stream ?? SideStream(deviceIndex));
        return new Restore(() => e.SetCurrentStream(previous));
    }

    /// <summary>The cudaStream_t libtorch currently launches on for <paramref name="deviceIndex"/> on this thread, for
    /// our own kernels (Native/CudaKernels).</summary>
    public static IntPtr CurrentStreamHandle(int deviceIndex)
    {
        var e = Require();
        if (e.StreamHandle == null) throw new NotSupportedException("libc10_cuda does not export "
            + $"{StreamHandleSymbol}");
        var current = e.GetCurrentStream((sbyte)deviceIndex);
        return e.StreamHandle(&current);
    }

    sealed class Restore(Action action) : IDisposable
    {
        bool done;
        public void Dispose() { if (!done) { done = true; action(); } }
    }

    /// <summary>A new memory pool for graphs to share (<see cref="Capture"/>).</summary>
    public static MemoryPool NewPool() => Require().PoolHandle();

    /// <summary>Captures <paramref name="body"/> into a graph: warms it up on a side stream (cuDNN/cuBLAS pick their
    /// kernels and workspaces there), then records it. The tensors <paramref name="body"/> returns are the graph's
    /// outputs, rewritten by every <see cref="CapturedGraph.Replay"/>. The body must not wait on the host (no
    /// <c>.item()</c>, no copies from pageable memory) and must see the same shapes on every replay.
    /// <para>Graphs captured into one <paramref name="pool"/> (<see cref="NewPool"/>) share their memory: a replay
    /// may overwrite the outputs of the others, so each replay's outputs must be used before another graph of the
    /// pool replays. Without a pool the graph gets its own. The warm-up's memory stays cached on its
    /// <paramref name="stream"/> (libtorch's allocator keeps freed blocks per stream): captures that share one
    /// stream (<see cref="SideStream"/>) reuse it, where each new pooled stream would cache its own.</para></summary>
    public static CapturedGraph Capture(int deviceIndex, Func<Tensor[]> body, int warmup = 2,
        MemoryPool? pool = null, CudaStream? stream = null)
    {
        var e = Require();
        var graph = Marshal.AllocHGlobal(ObjectBytes);
        new Span<byte>((void*)graph, ObjectBytes).Clear();
        Tensor[]? outputs = null;
        bool constructed = false;
        var device = new Device(DeviceType.CUDA, deviceIndex);
        try
        {
            cuda.synchronize(device);
            using (UseSideStream(deviceIndex, stream))
            {
                for (int i = 0; i < warmup; i++)
                    foreach (var t in body()) t.Dispose();
                cuda.synchronize(device);
                e.Construct(graph, 0);
                constructed = true;
                var (first, second) = pool ?? default;
                e.CaptureBegin(graph, first, second, CaptureModeThreadLocal);
                try
                {
                    outputs = body();
                }
                finally
                {
                    e.CaptureEnd(graph); // also on failure: a stream left capturing poisons every later launch
                }
            }
            cuda.synchronize(device);
            return new CapturedGraph(e, graph, outputs);
        }
        catch
        {
            if (outputs is not null) foreach (var t in outputs) t.Dispose();
            if (constructed) e.Destruct(graph);
            Marshal.FreeHGlobal(graph);
            throw;
        }
    }

    public sealed class CapturedGraph : IDisposable
    {
        readonly Entry entry;
        IntPtr graph;

        internal CapturedGraph(Entry entry, IntPtr graph, Tensor[] outputs)
            => (this.entry, this.graph, Outputs) = (entry, graph, outputs);

        /// <summary>The captured body's results; valid after each <see cref="Replay"/> until the next one.</summary>
        public Tensor[] Outputs { get; }

        /// <summary>Launches the whole captured sequence on the current stream.</summary>
        public void Replay()
        {
            ObjectDisposedException.ThrowIf(graph == IntPtr.Zero, this);
            entry.Replay(graph);
        }

        public void Dispose()
        {
            if (graph == IntPtr.Zero) return;
            foreach (var t in Outputs) t.Dispose();
            entry.Destruct(graph);
            Marshal.FreeHGlobal(graph);
            graph = IntPtr.Zero;
        }
    }

    static (Entry?, string?) Resolve()
    {
        var (torchCuda, torchPath) = LibTorchLibraries.Find(LibTorchLibraries.PlatformName("torch_cuda"));
        if (torchCuda == IntPtr.Zero) return (null, "libtorch_cuda is not loaded (a CPU-only libtorch)");
        var (c10Cuda, c10Path) = LibTorchLibraries.Find(LibTorchLibraries.PlatformName("c10_cuda"));
        if (c10Cuda == IntPtr.Zero) return (null, "libc10_cuda is not loaded (a CPU-only libtorch)");
        var symbols = new (IntPtr Handle, string Library, string[] Names)[]
        {
            (torchCuda, torchPath!, ConstructorSymbols), (torchCuda, torchPath!, [DestructorSymbol]),
                (torchCuda, torchPath!, [CaptureBeginSymbol]),
            (torchCuda, torchPath!, [CaptureEndSymbol]), (torchCuda, torchPath!, [ReplaySymbol]),
                (c10Cuda, c10Path!, StreamFromPoolSymbols),
            (c10Cuda, c10Path!, [GetCurrentStreamSymbol]), (c10Cuda, c10Path!, [SetCurrentStreamSymbol]),
            (torchCuda, torchPath!, [PoolHandleSymbol]),
        };
        var addresses = new IntPtr[symbols.Length];
        for (int i = 0; i < symbols.Length; i++)
        {
            addresses[i] = LibTorchLibraries.Export(symbols[i].Handle, symbols[i].Names);
            if (addresses[i] == IntPtr.Zero) return (null,
                $"{symbols[i].Library} exports none of {string.Join(", ", symbols[i].Names)}");
        }
        var entry = new Entry
        {
            Construct = (delegate* unmanaged<IntPtr, byte, void>)addresses[0],
            Destruct = (delegate* unmanaged<IntPtr, void>)addresses[1],
            CaptureBegin = (delegate* unmanaged<IntPtr, ulong, ulong, int, void>)addresses[2],
            CaptureEnd = (delegate* unmanaged<IntPtr, void>)addresses[3],
            Replay = (delegate* unmanaged<IntPtr, void>)addresses[4],
            StreamFromPool = (delegate* unmanaged<byte, sbyte, CudaStream>)addresses[5],
            GetCurrentStream = (delegate* unmanaged<sbyte, CudaStream>)addresses[6],
            SetCurrentStream = (delegate* unmanaged<CudaStream, void>)addresses[7],
            PoolHandle = (delegate* unmanaged<MemoryPool>)addresses[8],
            // optional: only our own kernels need it (CudaKernels says so when it is missing)
            StreamHandle = (delegate* unmanaged<CudaStream*, IntPtr>)LibTorchLibraries.Export(c10Cuda,
                StreamHandleSymbol),
        };
        return (entry, null);
    }
}
