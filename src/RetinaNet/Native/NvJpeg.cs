using System.Runtime.InteropServices;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Native;

/// <summary>JPEG decoding on the GPU with NVIDIA's nvJPEG (the GPU machine ships libnvjpeg.so.13), straight into a
/// uint8 [3, H, W] CUDA tensor: what <c>--with-dali</c> means here. One library handle per process, one decoder state
/// per thread (nvJPEG's rule). EXIF orientation, which nvJPEG ignores, is read from the header and applied on the GPU.
/// Formats nvJPEG does not take (PNG, BMP, CMYK/YCCK JPEGs) return null so the caller decodes them on the CPU.
/// Data nvJPEG rejects is an <see cref="InvalidDataException"/>; the caller names the file.</summary>
public static unsafe class NvJpeg
{
    static readonly string[] LibraryNames = ["libnvjpeg.so.13", "libnvjpeg.so.12", "libnvjpeg.so"];
    const int Success = 0, OutputRgb = 3, MaxComponents = 4;

    sealed class Api
    {
        public delegate* unmanaged<IntPtr*, int> CreateSimple;
        public delegate* unmanaged<IntPtr, IntPtr*, int> StateCreate;
        public delegate* unmanaged<IntPtr, byte*, nuint, int*, int*, int*, int*, int> GetImageInfo;
        public delegate* unmanaged<IntPtr, IntPtr, byte*, nuint, int, Image*, IntPtr, int> Decode;
        public IntPtr Handle;
    }

    [StructLayout(LayoutKind.Sequential)]
    struct Image
    {
        public IntPtr C0, C1, C2, C3;
        public nuint P0, P1, P2, P3;
    }

    static readonly Lazy<(Api? Api, string? Missing)> resolved = new(Resolve);
    [ThreadStatic] static IntPtr state;

    public static bool Available => resolved.Value.Api is not null;
    public static string? MissingReason => resolved.Value.Missing;

    /// <summary>Decodes a JPEG to uint8 RGB [3, H, W] on <paramref name="device"/> (upright), or null when nvJPEG
    /// cannot take this file (not a JPEG, or a colour model it lacks).</summary>
    public static Tensor? Decode(byte[] data, Device device)
    {
        var api = resolved.Value.Api ?? throw new NotSupportedException($"nvJPEG is not available: {MissingReason}");
        if (data.Length < 4 || data[0] != 0xFF || data[1] != 0xD8) return null;
        if (state == IntPtr.Zero)
        {
            IntPtr s;
            int created = api.StateCreate(api.Handle, &s);
            if (created != Success)
                throw new InvalidOperationException($"nvjpegJpegStateCreate failed with status {created}");
            state = s;
        }
        int components, subsampling;
        int* widths = stackalloc int[MaxComponents];
        int* heights = stackalloc int[MaxComponents];
        fixed (byte* p = data)
        {
            int status = api.GetImageInfo(api.Handle, p, (nuint)data.Length, &components, &subsampling, widths,
                heights);
            if (status != Success) throw new InvalidDataException($"corrupt JPEG data (nvJPEG status {status})");
            if (components == 4) return null; // CMYK / YCCK: the CPU decoder converts those
            int w = widths[0], h = heights[0];
            var pixels = empty(3, h, w, ScalarType.Byte, device);
            var basePtr = TensorMemory.DataPointer(pixels);
            var image = new Image { C0 = basePtr, C1 = basePtr + (nint)((long)w * h), C2 = basePtr + (nint)(2L * w * h),
                P0 = (nuint)w, P1 = (nuint)w, P2 = (nuint)w };
            status = api.Decode(api.Handle, state, p, (nuint)data.Length, OutputRgb, &image, IntPtr.Zero);
            if (status != Success)
            {
                pixels.Dispose();
                throw new InvalidDataException($"truncated or corrupt JPEG data (nvJPEG status {status})");
            }
            return Orient(pixels, data);
        }
    }

    /// <summary>Applies the EXIF orientation (read by Skia from the header alone) to [3, H, W] pixels.</summary>
    static Tensor Orient(Tensor pixels, byte[] data)
    {
        using var stream = new SKMemoryStream(data);
        using var codec = SKCodec.Create(stream);
        var origin = codec?.EncodedOrigin ?? SKEncodedOrigin.TopLeft;
        Tensor Own(Tensor t) { var c = t.contiguous(); pixels.Dispose(); return c; }
        return origin switch
        {
            SKEncodedOrigin.TopRight => Own(pixels.flip(2)),
            SKEncodedOrigin.BottomRight => Own(pixels.flip(1, 2)),
            SKEncodedOrigin.BottomLeft => Own(pixels.flip(1)),
            SKEncodedOrigin.LeftTop => Own(pixels.transpose(1, 2)),
            SKEncodedOrigin.RightTop => Own(pixels.transpose(1, 2).flip(2)),
            SKEncodedOrigin.RightBottom => Own(pixels.transpose(1, 2).flip(1, 2)),
            SKEncodedOrigin.LeftBottom => Own(pixels.transpose(1, 2).flip(1)),
            _ => pixels,
        };
    }

    static (Api?, string?) Resolve()
    {
        IntPtr lib = IntPtr.Zero;
        foreach (var n in LibraryNames) if (NativeLibrary.TryLoad(n, out lib)) break;
        if (lib == IntPtr.Zero) return (null,
            $"none of {string.Join(", ", LibraryNames)} could be loaded (install CUDA's nvJPEG)");
        var api = new Api();
        string? missing = null;
        IntPtr Get(string symbol)
        {
            if (NativeLibrary.TryGetExport(lib, symbol, out var f)) return f;
            missing ??= $"nvJPEG lacks {symbol}";
            return IntPtr.Zero;
        }
        api.CreateSimple = (delegate* unmanaged<IntPtr*, int>)Get("nvjpegCreateSimple");
        api.StateCreate = (delegate* unmanaged<IntPtr, IntPtr*, int>)Get("nvjpegJpegStateCreate");
        api.GetImageInfo =
            (delegate* unmanaged<IntPtr, byte*, nuint, int*, int*, int*, int*, int>)Get("nvjpegGetImageInfo");
        api.Decode = (delegate* unmanaged<IntPtr, IntPtr, byte*, nuint, int, Image*, IntPtr, int>)Get("nvjpegDecode");
        if (missing is not null) return (null, missing);
        IntPtr handle;
        int status = api.CreateSimple(&handle);
        if (status != Success) return (null, $"nvjpegCreateSimple failed with status {status}");
        api.Handle = handle;
        return (api, null);
    }
}
