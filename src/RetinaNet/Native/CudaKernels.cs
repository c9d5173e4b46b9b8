using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Text;
using static TorchSharp.torch;

namespace RetinaNet.Native;

/// <summary>One argument of a kernel launch, as the 8 bytes the kernel reads: a tensor's device address, an int, a
/// long, a float or a double.</summary>
public readonly struct KernelArg
{
    internal readonly long Bits;
    KernelArg(long bits) => Bits = bits;
    public static implicit operator KernelArg(Tensor t) => new(TensorMemory.DataPointer(t));
    public static implicit operator KernelArg(int v) => new(v);
    public static implicit operator KernelArg(long v) => new(v);
    public static implicit operator KernelArg(float v) => new(BitConverter.SingleToInt32Bits(v));
    public static implicit operator KernelArg(double v) => new(BitConverter.DoubleToInt64Bits(v));
}

/// <summary>Our own CUDA C kernels where libtorch has no fused operation for the job: exact NMS without host waits
/// (<see cref="Boxes.NmsKernel"/>), radix top-k (<see cref="Inference.TopKKernel"/>), anchor matching
/// (<see cref="Boxes.AssignKernel"/>), the focal and box losses (<see cref="Model.FocalLossKernel"/>,
/// <see cref="Model.BoxLossKernel"/>) and frozen batch norm + residual + ReLU, forward and backward
/// (<see cref="Model.AffineReluKernel"/>). Their sources are .cu files next to those classes
/// (<see cref="CudaSource"/>), compiled at run time by NVRTC for the card's architecture (once per machine:
/// <see cref="KernelCache"/>) and launched through the CUDA driver API on libtorch's current stream, so they order
/// with libtorch's kernels and are recorded by CUDA graph capture like them. Tensors pass as device addresses (they
/// must be contiguous in the layout the kernel expects); everything else in this project stays on TorchSharp's API.
/// <see cref="KernelOptions"/> says which of them run.</summary>
public static unsafe class CudaKernels
{
    static readonly string[] DriverNames = ["libcuda.so.1", "libcuda.so"];
    static readonly string[] NvrtcNames = ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"];
    public const string NvrtcVariable = "RETINANET_NVRTC";
    const int ComputeCapabilityMajor = 75, ComputeCapabilityMinor = 76;

    internal sealed class Api
    {
        public delegate* unmanaged<uint, int> Init;
        public delegate* unmanaged<int*, int, int> DeviceGet;
        public delegate* unmanaged<int*, int, int, int> DeviceGetAttribute;
        public delegate* unmanaged<IntPtr*, int> CtxGetCurrent;
        public delegate* unmanaged<IntPtr, int> CtxSetCurrent;
        public delegate* unmanaged<IntPtr*, int, int> PrimaryCtxRetain;
        public delegate* unmanaged<IntPtr*, void*, int> ModuleLoadData;
        public delegate* unmanaged<IntPtr*, IntPtr, byte*, int> ModuleGetFunction;
        public delegate* unmanaged<IntPtr, uint, uint, uint, uint, uint, uint, uint, IntPtr, IntPtr*, IntPtr*, int>
            LaunchKernel;
        public delegate* unmanaged<int, byte**, int> GetErrorName;
        public delegate* unmanaged<IntPtr*, byte*, byte*, int, byte**, byte**, int> CreateProgram;
        public delegate* unmanaged<IntPtr, int, byte**, int> CompileProgram;
        public delegate* unmanaged<IntPtr, nuint*, int> GetProgramLogSize;
        public delegate* unmanaged<IntPtr, byte*, int> GetProgramLog;
        public delegate* unmanaged<IntPtr, nuint*, int> GetCubinSize;
        public delegate* unmanaged<IntPtr, byte*, int> GetCubin;
        public delegate* unmanaged<IntPtr*, int> DestroyProgram;
        public delegate* unmanaged<int*, int*, int> Version;
        public delegate* unmanaged<IntPtr*, uint, int> EventCreate;
        public delegate* unmanaged<IntPtr, IntPtr, int> EventRecord;
        public delegate* unmanaged<IntPtr, int> EventSynchronize;
        public delegate* unmanaged<IntPtr, int> EventDestroy;
        public string NvrtcPath = "";
        /// <summary>NVRTC's version, part of a cached cubin's key.</summary>
        public string Compiler = "";
    }

    static readonly Lazy<(Api? Api, string? Missing)> resolved = new(Resolve);
    static readonly ConcurrentDictionary<(string Source, int Device), Lazy<IntPtr>> modules = new();
    static readonly ConcurrentDictionary<(IntPtr Module, string Name), IntPtr> functions = new();

    /// <summary>CUDA C our kernel sources start with: float32, bf16 and fp16 values read as float and written back
    /// rounded to nearest even (16-bit values travel as raw unsigned shorts: no cuda_fp16.h/cuda_bf16.h
    /// needed).</summary>
    public static readonly string ValueAccess = CudaSource.Load("ValueAccess.cuh");

    /// <summary>The suffix of a kernel compiled once per value type (f32, bf16, f16) for <paramref name="x"/>'s
    /// dtype.</summary>
    public static string TypeSuffix(Tensor x) => x.dtype switch
    {
        ScalarType.Float32 => "f32",
        ScalarType.BFloat16 => "bf16",
        ScalarType.Float16 => "f16",
        _ => throw new ArgumentException($"our kernels take float32, bf16 or fp16 values, not {x.dtype}"),
    };

    /// <summary>Blocks of <paramref name="threads"/> for a grid-stride loop over <paramref name="items"/>: enough
    /// for one item a thread, at least one, at most the 65,535 a one-dimensional grid is kept to here.</summary>
    public static int GridStrideBlocks(long items, int threads) =>
        (int)Math.Max(1, Math.Min((items + threads - 1) / threads, 65535));

    public static bool Available => resolved.Value.Api is not null;
    public static string? MissingReason => resolved.Value.Missing;

    internal static Api Require() => resolved.Value.Api
        ?? throw new NotSupportedException($"CUDA kernels are unavailable: {MissingReason}");

    /// <summary>A compiled kernel of <paramref name="source"/> (compiled once per process and device, and once per
    /// machine where the <see cref="KernelCache"/> keeps it).</summary>
    public static Kernel Get(string source, string name, int deviceIndex)
    {
        var module = modules.GetOrAdd((source, deviceIndex),
            key => new Lazy<IntPtr>(() => LoadModule(key.Source, key.Device, Cache).Module)).Value;
        return Function(module, name, deviceIndex);
    }

    /// <summary>The kernel <paramref name="name"/> of a module <see cref="LoadModule"/> gave.</summary>
    public static Kernel Function(IntPtr module, string name, int deviceIndex)
    {
        var function = functions.GetOrAdd((module, name), key =>
        {
            var api = Require();
            IntPtr f;
            fixed (byte* n = Utf8(key.Name))
                Check(api, api.ModuleGetFunction(&f, key.Module, n), $"cuModuleGetFunction({key.Name})");
            return f;
        });
        return new Kernel(function, deviceIndex);
    }

    public readonly record struct Dim3(uint X, uint Y = 1, uint Z = 1)
    {
        public static implicit operator Dim3(int x) => new((uint)x);
        public static implicit operator Dim3((int X, int Y) d) => new((uint)d.X, (uint)d.Y);
        public static implicit operator Dim3((int X, int Y, int Z) d) => new((uint)d.X, (uint)d.Y, (uint)d.Z);
    }

    public readonly struct Kernel
    {
        readonly IntPtr function;
        readonly int device;
        internal Kernel(IntPtr function, int device) => (this.function, this.device) = (function, device);

        /// <summary>Launches on libtorch's current stream of the kernel's device (the capturing stream while a CUDA
        /// graph is recorded).</summary>
        public void Launch(Dim3 grid, Dim3 block, int sharedBytes, params ReadOnlySpan<KernelArg> args)
        {
            var api = Require();
            EnsureContext(api, device);
            long* slots = stackalloc long[Math.Max(1, args.Length)];
            IntPtr* pointers = stackalloc IntPtr[Math.Max(1, args.Length)];
            for (int i = 0; i < args.Length; i++) { slots[i] = args[i].Bits; pointers[i] = (IntPtr)(slots + i); }
            Check(api, api.LaunchKernel(function, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, (uint)sharedBytes,
                CudaGraphs.CurrentStreamHandle(device), pointers, null), "cuLaunchKernel");
        }
    }

    /// <summary>libtorch's runtime makes the device's primary context current on the threads it runs on; a thread that
    /// has not touched the runtime yet gets it here.</summary>
    internal static void EnsureContext(Api api, int deviceIndex)
    {
        IntPtr current;
        Check(api, api.CtxGetCurrent(&current), "cuCtxGetCurrent");
        if (current != IntPtr.Zero) return;
        int device;
        Check(api, api.DeviceGet(&device, deviceIndex), "cuDeviceGet");
        Check(api, api.PrimaryCtxRetain(&current, device), "cuDevicePrimaryCtxRetain");
        Check(api, api.CtxSetCurrent(current), "cuCtxSetCurrent");
    }

    static readonly KernelCache Cache = KernelCache.ForThisUser();

    /// <summary>The module of <paramref name="source"/> compiled for device <paramref name="deviceIndex"/>'s
    /// architecture: from <paramref name="cache"/> where it holds a cubin the driver loads, else compiled (and
    /// stored there). A new module each call; <see cref="Get"/> keeps one per source and device.</summary>
    public static (IntPtr Module, bool FromCache) LoadModule(string source, int deviceIndex, KernelCache cache)
    {
        var api = Require();
        EnsureContext(api, deviceIndex);
        int device, major, minor;
        Check(api, api.DeviceGet(&device, deviceIndex), "cuDeviceGet");
        Check(api, api.DeviceGetAttribute(&major, ComputeCapabilityMajor, device), "cuDeviceGetAttribute");
        Check(api, api.DeviceGetAttribute(&minor, ComputeCapabilityMinor, device), "cuDeviceGetAttribute");
        // no fused multiply-add contraction: the NMS overlap test must round as the tensor ops do
        string[] options = [$"--gpu-architecture=sm_{major}{minor}", "--std=c++17", "--fmad=false"];
        var key = KernelCache.Key(source, options, api.Compiler);
        if (cache.Load(key) is byte[] cached && TryLoadModule(api, cached) is IntPtr fromCache)
            return (fromCache, true);
        var cubin = CompileCubin(api, source, options, $"sm_{major}{minor}");
        cache.Store(key, cubin);
        return (TryLoadModule(api, cubin, throwOnError: true)!.Value, false);
    }

    /// <summary>The module of <paramref name="cubin"/>, which lives as long as the process; null where the driver
    /// refuses it (a cached cubin it cannot load is compiled again).</summary>
    static IntPtr? TryLoadModule(Api api, byte[] cubin, bool throwOnError = false)
    {
        IntPtr module;
        int status;
        fixed (byte* c = cubin) status = api.ModuleLoadData(&module, c);
        if (status == 0) return module;
        if (throwOnError) Check(api, status, "cuModuleLoadData");
        return null;
    }

    static byte[] CompileCubin(Api api, string source, string[] options, string architecture)
    {
        IntPtr program;
        fixed (byte* src = Utf8(source)) fixed (byte* file = Utf8("retinanet_kernels.cu"))
            CheckNvrtc(api.CreateProgram(&program, src, file, 0, null, null), "nvrtcCreateProgram");
        try
        {
            var optionBytes = options.Select(Utf8).ToArray();
            var handles = optionBytes.Select(b => GCHandle.Alloc(b, GCHandleType.Pinned)).ToArray();
            try
            {
                byte** optionPointers = stackalloc byte*[options.Length];
                for (int i = 0; i < options.Length; i++) optionPointers[i] = (byte*)handles[i].AddrOfPinnedObject();
                int status = api.CompileProgram(program, options.Length, optionPointers);
                if (status != 0)
                {
                    nuint logSize;
                    api.GetProgramLogSize(program, &logSize);
                    var log = new byte[(int)logSize + 1];
                    fixed (byte* l = log) api.GetProgramLog(program, l);
                    throw new InvalidOperationException($"NVRTC ({api.NvrtcPath}) could not compile our kernels " +
                        $"for {architecture}: {Encoding.UTF8.GetString(log).TrimEnd('\0').Trim()}");
                }
            }
            finally
            {
                foreach (var h in handles) h.Free();
            }
            nuint size;
            CheckNvrtc(api.GetCubinSize(program, &size), "nvrtcGetCUBINSize");
            var cubin = new byte[(int)size];
            fixed (byte* c = cubin) CheckNvrtc(api.GetCubin(program, c), "nvrtcGetCUBIN");
            return cubin;
        }
        finally
        {
            api.DestroyProgram(&program);
        }
    }

    static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s + "\0");

    internal static void Check(Api api, int status, string call)
    {
        if (status == 0) return;
        byte* name = null;
        api.GetErrorName(status, &name);
        throw new InvalidOperationException(
            $"{call} failed: {(name is null ? $"CUDA error {status}" : Marshal.PtrToStringUTF8((IntPtr)name))}");
    }

    static void CheckNvrtc(int status, string call)
    {
        if (status != 0) throw new InvalidOperationException($"{call} failed with NVRTC status {status}");
    }

    /// <summary>NVRTC: RETINANET_NVRTC, else by soname, else next to libtorch_cuda (libtorch zips bundle a hashed
    /// libnvrtc-*.so, pip wheels an nvidia/*/lib folder), else in CUDA_HOME or /usr/local/cuda.</summary>
    static IEnumerable<string> NvrtcCandidates()
    {
        if (Environment.GetEnvironmentVariable(NvrtcVariable) is { Length: > 0 } chosen) yield return chosen;
        foreach (var n in NvrtcNames) yield return n;
        var dirs = new List<string>();
        if (LibTorchLibraries.Find(LibTorchLibraries.PlatformName("torch_cuda")).Path is string torchCuda
            && Path.GetDirectoryName(Path.GetFullPath(torchCuda)) is string lib)
        {
            dirs.Add(lib);
            var nvidia = Path.Combine(lib, "..", "..", "nvidia");
            if (Directory.Exists(nvidia))
                dirs.AddRange(Directory.GetDirectories(nvidia).Select(d => Path.Combine(d, "lib")));
        }
        foreach (var home in new[] { Environment.GetEnvironmentVariable("CUDA_HOME"), "/usr/local/cuda" })
            if (!string.IsNullOrEmpty(home))
                dirs.AddRange([Path.Combine(home, "lib64"), Path.Combine(home, "targets", "x86_64-linux", "lib")]);
        foreach (var dir in dirs.Where(Directory.Exists))
            foreach (var file in Directory.GetFiles(dir, "libnvrtc*.so*").Order())
                if (!Path.GetFileName(file).Contains("builtins") && !Path.GetFileName(file).Contains(".alt."))
                    yield return file;
    }

    static (Api?, string?) Resolve()
    {
        if (!OperatingSystem.IsLinux()) return (null, "our CUDA kernels are built for Linux only");
        if (!CudaGraphs.Available) return (null, CudaGraphs.MissingReason);
        if (!CudaGraphs.StreamHandleAvailable)
            return (null, $"libc10_cuda does not export {CudaGraphs.StreamHandleSymbol}");
        IntPtr driver = IntPtr.Zero;
        foreach (var n in DriverNames) if (NativeLibrary.TryLoad(n, out driver)) break;
        if (driver == IntPtr.Zero)
            return (null, $"the CUDA driver ({string.Join(", ", DriverNames)}) could not be loaded");
        IntPtr nvrtc = IntPtr.Zero; string nvrtcPath = "";
        foreach (var candidate in NvrtcCandidates())
            if (NativeLibrary.TryLoad(candidate, out nvrtc)) { nvrtcPath = candidate; break; }
        if (nvrtc == IntPtr.Zero)
            return (null, $"NVRTC could not be found (install CUDA's libnvrtc, or name it in {NvrtcVariable})");
        string? missing = null;
        IntPtr Get(IntPtr lib, string symbol)
        {
            if (NativeLibrary.TryGetExport(lib, symbol, out var f)) return f;
            missing ??= $"{(lib == driver ? "the CUDA driver" : nvrtcPath)} lacks {symbol}";
            return IntPtr.Zero;
        }
        var api = new Api
        {
            NvrtcPath = nvrtcPath,
            Init = (delegate* unmanaged<uint, int>)Get(driver, "cuInit"),
            DeviceGet = (delegate* unmanaged<int*, int, int>)Get(driver, "cuDeviceGet"),
            DeviceGetAttribute = (delegate* unmanaged<int*, int, int, int>)Get(driver, "cuDeviceGetAttribute"),
            CtxGetCurrent = (delegate* unmanaged<IntPtr*, int>)Get(driver, "cuCtxGetCurrent"),
            CtxSetCurrent = (delegate* unmanaged<IntPtr, int>)Get(driver, "cuCtxSetCurrent"),
            PrimaryCtxRetain = (delegate* unmanaged<IntPtr*, int, int>)Get(driver, "cuDevicePrimaryCtxRetain"),
            ModuleLoadData = (delegate* unmanaged<IntPtr*, void*, int>)Get(driver, "cuModuleLoadData"),
            ModuleGetFunction = (delegate* unmanaged<IntPtr*, IntPtr, byte*, int>)Get(driver, "cuModuleGetFunction"),
            LaunchKernel = (delegate* unmanaged<IntPtr, uint, uint, uint, uint, uint, uint, uint, IntPtr, IntPtr*,
                IntPtr*, int>)Get(driver, "cuLaunchKernel"),
            GetErrorName = (delegate* unmanaged<int, byte**, int>)Get(driver, "cuGetErrorName"),
            CreateProgram = (delegate* unmanaged<IntPtr*, byte*, byte*, int, byte**, byte**, int>)
                Get(nvrtc, "nvrtcCreateProgram"),
            CompileProgram = (delegate* unmanaged<IntPtr, int, byte**, int>)Get(nvrtc, "nvrtcCompileProgram"),
            GetProgramLogSize = (delegate* unmanaged<IntPtr, nuint*, int>)Get(nvrtc, "nvrtcGetProgramLogSize"),
            GetProgramLog = (delegate* unmanaged<IntPtr, byte*, int>)Get(nvrtc, "nvrtcGetProgramLog"),
            GetCubinSize = (delegate* unmanaged<IntPtr, nuint*, int>)Get(nvrtc, "nvrtcGetCUBINSize"),
            GetCubin = (delegate* unmanaged<IntPtr, byte*, int>)Get(nvrtc, "nvrtcGetCUBIN"),
            DestroyProgram = (delegate* unmanaged<IntPtr*, int>)Get(nvrtc, "nvrtcDestroyProgram"),
            Version = (delegate* unmanaged<int*, int*, int>)Get(nvrtc, "nvrtcVersion"),
            EventCreate = (delegate* unmanaged<IntPtr*, uint, int>)Get(driver, "cuEventCreate"),
            EventRecord = (delegate* unmanaged<IntPtr, IntPtr, int>)Get(driver, "cuEventRecord"),
            EventSynchronize = (delegate* unmanaged<IntPtr, int>)Get(driver, "cuEventSynchronize"),
            EventDestroy = (delegate* unmanaged<IntPtr, int>)Get(driver, "cuEventDestroy_v2"),
        };
        if (missing is not null) return (null, missing);
        int nvrtcMajor, nvrtcMinor;
        if (api.Version(&nvrtcMajor, &nvrtcMinor) != 0) return (null, $"nvrtcVersion failed ({nvrtcPath})");
        api.Compiler = $"nvrtc {nvrtcMajor}.{nvrtcMinor}";
        int status = api.Init(0);
        if (status != 0) return (null, $"cuInit failed with CUDA error {status}");
        return (api, null);
    }
}
