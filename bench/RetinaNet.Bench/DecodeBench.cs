using System.Diagnostics;
#if DECODE_BENCH_OPENCV
using OpenCvSharp;
#endif
using SkiaSharp;

namespace RetinaNet.Bench;

/// <summary>Single-thread decode speed of the candidate decoders on a folder of images (files read into memory first,
/// so only decoding to 8-bit RGB is timed; per image the best of the rounds). Prints one JSON line per decoder.
///   RetinaNet.Bench decode --dir FOLDER [--rounds 3]
/// OpenCvSharp is compared only in a build with -p:DecodeBenchOpenCv=true: its native library (113 MB) would not fit
/// the bench's package for the GPU machine.</summary>
public static class DecodeBench
{
    public static void Run(string dir, int rounds)
    {
        var files = Directory.EnumerateFiles(dir).Where(f => f.EndsWith(".jpg", StringComparison.OrdinalIgnoreCase)
            || f.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
            .Order().Select(File.ReadAllBytes).ToList();
        if (files.Count == 0) throw new ArgumentException($"{dir}: no .jpg or .png files");
        var decoders = new (string Name, Func<byte[], long> Decode)[]
        {
            ("skiasharp", SkiaRgb),
#if DECODE_BENCH_OPENCV
            ("opencvsharp", OpenCvRgb),
#endif
                        ("retinanet_imagedecoder",
                            data => RetinaNet.Data.Imaging.ImageDecoder.Decode(data, "bench").Pixels.Length),
        };
        // warm-up round (first native calls, page faults)
        var pixels = decoders.Select(d => files.Sum(d.Decode)).ToArray();
        // Per image, the fastest of the rounds: robust against bursts of load from other processes on a shared machine.
        // Rounds alternate between the decoders so slow phases hit them alike.
        var best = decoders.Select(_ => files.Select(_ => double.MaxValue).ToArray()).ToArray();
        for (int r = 0; r < rounds; r++)
            for (int d = 0; d < decoders.Length; d++)
                for (int f = 0; f < files.Count; f++)
                {
                    long start = Stopwatch.GetTimestamp();
                    decoders[d].Decode(files[f]);
                    best[d][f] = Math.Min(best[d][f], Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                }
        for (int d = 0; d < decoders.Length; d++)
        {
            double ms = best[d].Average();
            Console.WriteLine($"{{\"bench\": \"decode\", \"decoder\": \"{decoders[d].Name}\", \"dir\": \"{dir}\", " +
                $"\"images\": {files.Count}, \"megapixels\": {pixels[d] / 3 / 1e6:F2}, \"rounds\": {rounds}, " +
                $"\"ms_per_image\": {ms:F3}, \"images_per_s\": {1000 / ms:F1}}}");
        }
    }

    // Skia has no 3-byte colour type: decode to RGBA (unpremultiplied) and drop alpha, as the library does.
    static long SkiaRgb(byte[] data)
    {
        using var codec = SKCodec.Create(new SKMemoryStream(data))
            ?? throw new InvalidDataException("skia: not an image");
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var rgba = new byte[info.BytesSize];
        unsafe
        {
            fixed (byte* p = rgba)
                if (codec.GetPixels(info, (IntPtr)p) != SKCodecResult.Success)
                    throw new InvalidDataException("skia: decode failed");
        }
        var rgb = new byte[info.Width * info.Height * 3];
        for (int i = 0, j = 0; j < rgb.Length; i += 4, j += 3)
        {
            rgb[j] = rgba[i]; rgb[j + 1] = rgba[i + 1]; rgb[j + 2] = rgba[i + 2];
        }
        return rgb.Length;
    }

#if DECODE_BENCH_OPENCV
    static long OpenCvRgb(byte[] data)
    {
        Cv2.SetNumThreads(1); // single thread, like the others (CvtColor would use every core)
        using var bgr = Cv2.ImDecode(data, ImreadModes.Color);
        if (bgr.Empty()) throw new InvalidDataException("opencv: not an image");
        using var rgb = new Mat();
        Cv2.CvtColor(bgr, rgb, ColorConversionCodes.BGR2RGB);
        var bytes = new byte[rgb.Total() * 3];
        System.Runtime.InteropServices.Marshal.Copy(rgb.Data, bytes, 0, bytes.Length);
        return bytes.Length;
    }
#endif
}
