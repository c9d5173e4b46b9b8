using System.Runtime.InteropServices;
using TorchSharp;

namespace RetinaNet.Native;

/// <summary>Handles to libtorch's own shared libraries as this process already loaded them (TorchSharp loads them;
/// with <c>-p:LibTorch=none</c> they come from LD_LIBRARY_PATH), for the exported C++ entry points TorchSharp does
/// not wrap (autocast, CUDA graphs, cuDNN flags).</summary>
public static class LibTorchLibraries
{
    /// <summary>The loaded library whose file name is <paramref name="name"/> (e.g. <c>libtorch_cuda.so</c>): by name
    /// (dlopen finds a loaded library by its soname), else by the path in /proc/self/maps. Zero when absent.</summary>
    public static (IntPtr Handle, string? Path) Find(string name)
    {
        try
        {
            torch.InitializeDeviceType(DeviceType.CPU); // loads TorchSharp's native libraries
        }
        catch (Exception)
        {
            return (IntPtr.Zero, null);
        }
        if (NativeLibrary.TryLoad(name, out var handle)) return (handle, name);
        const string maps = "/proc/self/maps";
        if (!File.Exists(maps)) return (IntPtr.Zero, null);
        foreach (var line in File.ReadLines(maps))
        {
            int slash = line.IndexOf('/');
            if (slash < 0) continue;
            var path = line[slash..].Trim();
            if (Path.GetFileName(path) == name && NativeLibrary.TryLoad(path, out handle)) return (handle, path);
        }
        return (IntPtr.Zero, null);
    }

    /// <summary>The first of <paramref name="symbols"/> (alternative manglings across libtorch versions) that
    /// <paramref name="handle"/> exports.</summary>
    public static IntPtr Export(IntPtr handle, params string[] symbols)
    {
        foreach (var symbol in symbols)
            if (handle != IntPtr.Zero && NativeLibrary.TryGetExport(handle, symbol, out var address)) return address;
        return IntPtr.Zero;
    }

    public static string PlatformName(string stem) =>
        OperatingSystem.IsWindows() ? $"{stem}.dll" : OperatingSystem.IsMacOS() ? $"lib{stem}.dylib" : $"lib{stem}.so";
}
