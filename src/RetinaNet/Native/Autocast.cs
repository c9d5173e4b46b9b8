using System.Runtime.InteropServices;
using TorchSharp;
using ScalarType = TorchSharp.torch.ScalarType;

namespace RetinaNet.Native;

/// <summary>libtorch's own autocast (automatic mixed precision), switched through its exported C++ entry points in
/// libtorch_cpu.so, which TorchSharp does not wrap. Under <see cref="Enable"/> eligible ops (convolutions, linear,
/// matmul) on the given device run in the given lower precision while parameters and their gradients stay fp32.
/// <para>Autocast state is thread-local in libtorch: enable it on the thread that runs the model.</para>
/// <para>The symbols are resolved once, on first use; when one is missing <see cref="Available"/> is false,
/// <see cref="MissingReason"/> says which, and <see cref="Enable"/> throws (callers decide whether to fall back to
/// fp32).</para></summary>
public static unsafe class Autocast
{
    public const string SetEnabledSymbol = "_ZN2at8autocast20set_autocast_enabledEN3c1010DeviceTypeEb";
    public const string SetDtypeSymbol = "_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE";
    public const string IsEnabledSymbol = "_ZN2at8autocast19is_autocast_enabledEN3c1010DeviceTypeE";
    public const string ClearCacheSymbol = "_ZN2at8autocast11clear_cacheEv";
    /// <summary>Optional: with it the previous dtype is restored on dispose.</summary>
    public const string GetDtypeSymbol = "_ZN2at8autocast18get_autocast_dtypeEN3c1010DeviceTypeE";

    public static IReadOnlyList<string> RequiredSymbols { get;
        } = [SetEnabledSymbol, SetDtypeSymbol, IsEnabledSymbol, ClearCacheSymbol];

    // c10::DeviceType and c10::ScalarType are int8_t enums; bool is one byte.
    sealed class Entry
    {
        public delegate* unmanaged<sbyte, byte, void> SetEnabled;
        public delegate* unmanaged<sbyte, sbyte, void> SetDtype;
        public delegate* unmanaged<sbyte, byte> IsEnabled;
        public delegate* unmanaged<void> ClearCache;
        public delegate* unmanaged<sbyte, sbyte> GetDtype; // null when absent
    }

    static readonly Lazy<(Entry? Entry, string? Missing, string? Library)> resolved = new(Resolve);

    /// <summary>True when libtorch_cpu.so was found and exports every required symbol.</summary>
    public static bool Available => resolved.Value.Entry is not null;

    /// <summary>Why autocast is unavailable (names the missing library or symbol), or null.</summary>
    public static string? MissingReason => resolved.Value.Missing;

    /// <summary>The path (or name) of the libtorch_cpu library the symbols came from, or null.</summary>
    public static string? LibraryPath => resolved.Value.Library;

    /// <summary>Turns autocast on for <paramref name="device"/> (CPU or CUDA) with <paramref name="dtype"/>
    /// (BFloat16 or Float16); disposing restores the previous enabled flag and dtype and clears the autocast cast
    /// cache. Dispose on the same thread, innermost first.</summary>
    public static IDisposable Enable(DeviceType device, ScalarType dtype)
    {
        var entry = Require();
        if (device is not (DeviceType.CPU or DeviceType.CUDA)) throw new ArgumentOutOfRangeException(nameof(device),
            device, "autocast is supported here for CPU and CUDA");
        if (dtype is not (ScalarType.BFloat16
            or ScalarType.Float16)) throw new ArgumentOutOfRangeException(nameof(dtype), dtype,
            "autocast dtype must be BFloat16 or Float16");
        sbyte d = (sbyte)device;
        bool wasEnabled = entry.IsEnabled(d) != 0;
        sbyte? previousDtype = entry.GetDtype is null ? null : entry.GetDtype(d);
        entry.SetDtype(d, (sbyte)dtype);
        entry.SetEnabled(d, 1);
        return new Scope(entry, d, wasEnabled, previousDtype);
    }

    /// <summary>Whether autocast is on for <paramref name="device"/> on this thread.</summary>
    public static bool IsEnabled(DeviceType device) => Require().IsEnabled((sbyte)device) != 0;

    static Entry Require()
    {
        var (entry, missing, _) = resolved.Value;
        return entry ?? throw new NotSupportedException($"libtorch autocast is unavailable: {missing}");
    }

    sealed class Scope(Entry entry, sbyte device, bool wasEnabled, sbyte? previousDtype) : IDisposable
    {
        bool disposed;

        public void Dispose()
        {
            if (disposed) return;
            disposed = true;
            entry.SetEnabled(device, wasEnabled ? (byte)1 : (byte)0);
            if (previousDtype is sbyte dtype) entry.SetDtype(device, dtype);
            entry.ClearCache();
        }
    }

    static (Entry?, string?, string?) Resolve()
    {
        var (handle, library) = LibTorchLibraries.Find(LibTorchLibraries.PlatformName("torch_cpu"));
        if (handle == IntPtr.Zero) return (null,
            "libtorch_cpu is not loaded in this process and could not be found (TorchSharp's native libraries did not "
            + "load?)", null);

        foreach (var symbol in RequiredSymbols)
            if (!NativeLibrary.TryGetExport(handle, symbol, out _))
                return (null, $"{library} does not export {symbol}", library);

        var entry = new Entry
        {
            SetEnabled = (delegate* unmanaged<sbyte, byte, void>)NativeLibrary.GetExport(handle, SetEnabledSymbol),
            SetDtype = (delegate* unmanaged<sbyte, sbyte, void>)NativeLibrary.GetExport(handle, SetDtypeSymbol),
            IsEnabled = (delegate* unmanaged<sbyte, byte>)NativeLibrary.GetExport(handle, IsEnabledSymbol),
            ClearCache = (delegate* unmanaged<void>)NativeLibrary.GetExport(handle, ClearCacheSymbol),
            GetDtype = NativeLibrary.TryGetExport(handle, GetDtypeSymbol, out var get)
                ? (delegate* unmanaged<sbyte, sbyte>)get : null,
        };
        return (entry, null, library);
    }
}
