using System.Diagnostics;
using System.IO.Hashing;
using System.Text.RegularExpressions;
using TorchSharp;
using ScalarType = TorchSharp.torch.ScalarType;
using Tensor = TorchSharp.torch.Tensor;

namespace RetinaNet.Checkpoints;

/// <summary>A checkpoint file is damaged, truncated or not in a supported format. The message starts with the file path.</summary>
public class CheckpointFormatException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A pickle names a global outside the allow-list (it would run code if unpickled by Python). Nothing was executed.</summary>
public sealed class UnsafePickleException(string message) : CheckpointFormatException(message);

/// <summary>One tensor element type, under its names in torch pickles, torch itself and safetensors.</summary>
internal sealed record DType(string Storage, string Torch, ScalarType Scalar, int Size, string SafeTensors)
{
    public static readonly DType[] All =
    [
        new("FloatStorage", "float32", ScalarType.Float32, 4, "F32"),
        new("DoubleStorage", "float64", ScalarType.Float64, 8, "F64"),
        new("HalfStorage", "float16", ScalarType.Float16, 2, "F16"),
        new("BFloat16Storage", "bfloat16", ScalarType.BFloat16, 2, "BF16"),
        new("LongStorage", "int64", ScalarType.Int64, 8, "I64"),
        new("IntStorage", "int32", ScalarType.Int32, 4, "I32"),
        new("ShortStorage", "int16", ScalarType.Int16, 2, "I16"),
        new("CharStorage", "int8", ScalarType.Int8, 1, "I8"),
        new("ByteStorage", "uint8", ScalarType.Byte, 1, "U8"),
        new("BoolStorage", "bool", ScalarType.Bool, 1, "BOOL"),
    ];

    /// <summary>The dtype of a pickled storage class such as <c>torch.FloatStorage</c>; untyped storages hold bytes.</summary>
    public static DType? ByStorageGlobal(string global) => global switch
    {
        "torch.UntypedStorage" or "torch.storage.UntypedStorage" => All[8],
        _ when global.StartsWith("torch.", StringComparison.Ordinal) => All.FirstOrDefault(d => "torch." + d.Storage == global),
        _ => null,
    };

    public static DType? ByScalar(ScalarType s) => All.FirstOrDefault(d => d.Scalar == s);
}

internal static class TensorIo
{
    // TorchSharp's Tensor.bytes span is limited to int.MaxValue bytes, so big tensors go in slices.
    const long ChunkBytes = 1 << 24;

    public delegate void ChunkAction(Span<byte> chunk);

    /// <summary>Calls <paramref name="action"/> on consecutive byte spans covering a contiguous 1-D CPU tensor.</summary>
    public static void ForEachChunk(Tensor flat, ChunkAction action)
    {
        long n = flat.shape[0], per = Math.Max(1, ChunkBytes / flat.element_size());
        for (long i = 0; i < n; i += per)
        {
            using var part = flat.narrow(0, i, Math.Min(per, n - i));
            action(part.bytes);
        }
    }

    /// <summary>A new 1-D tensor of <paramref name="numel"/> elements read from the stream, its bytes added to
    /// <paramref name="crc"/> when given.</summary>
    public static Tensor Read(Stream s, DType dtype, long numel, Crc32? crc = null)
    {
        var t = torch.empty([numel], dtype.Scalar);
        try
        {
            ForEachChunk(t, c => { s.ReadExactly(c); crc?.Append(c); });
            return t;
        }
        catch { t.Dispose(); throw; }
    }

    /// <summary>Runs <paramref name="action"/> on the tensor's values as a contiguous 1-D CPU tensor.</summary>
    public static void WithFlatCpu(Tensor t, Action<Tensor> action)
    {
        using var scope = torch.NewDisposeScope(); // disposes the intermediate copies, never t itself
        action(t.detach().cpu().contiguous().reshape(-1));
    }
}

internal static partial class AtomicFile
{
    static readonly DateTime ProcessStartUtc = StartOfThisProcess();

    static DateTime StartOfThisProcess()
    {
        using var self = Process.GetCurrentProcess();
        return self.StartTime.ToUniversalTime();
    }

    /// <summary>
    /// Writes through a temporary file in the same folder, fsyncs it, then renames it over <paramref name="path"/>,
    /// so readers never see a half-written file and a failed save leaves the old file as it was. Temporary files of
    /// the same target that killed processes left behind are removed first.
    /// </summary>
    public static void Write(string path, Action<FileStream> write)
    {
        string full = Path.GetFullPath(path);
        RemoveStaleTemporaries(full);
        string tmp = $"{full}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    // NAME.tmp-PID-GUID; NAME.tmp-GUID from versions that did not name the writer
    [GeneratedRegex(@"^\.tmp-(?:(\d{1,9})-)?[0-9a-f]{32}$")]
    private static partial Regex TemporarySuffix();

    /// <summary>
    /// A process killed while saving leaves its temporary file (as large as the checkpoint) where no rename or
    /// cleanup will ever reach it. One is stale when its writer is gone: the process named in it is not running
    /// and the file was last written before this process started. Both must hold: the process id alone could be
    /// of another PID namespace (a container sharing the folder), the time alone of a stalled but live writer.
    /// Best effort: a file that cannot be examined or removed stays.
    /// </summary>
    static void RemoveStaleTemporaries(string full)
    {
        string name = Path.GetFileName(full);
        string[] files;
        try { files = Directory.GetFiles(Path.GetDirectoryName(full)!, name + ".tmp-*"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return; }
        foreach (var file in files)
        {
            string fileName = Path.GetFileName(file);
            if (!fileName.StartsWith(name, StringComparison.Ordinal)) continue; // the pattern is a wildcard match
            var m = TemporarySuffix().Match(fileName[name.Length..]);
            if (!m.Success || m.Groups[1].Success && IsRunning(int.Parse(m.Groups[1].Value))) continue;
            try
            {
                if (File.GetLastWriteTimeUtc(file) < ProcessStartUtc) File.Delete(file);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
    }

    static bool IsRunning(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException) { return false; }
    }
}
