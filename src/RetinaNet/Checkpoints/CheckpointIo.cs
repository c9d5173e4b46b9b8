using System.IO.Hashing;
using TorchSharp;
using ScalarType = TorchSharp.torch.ScalarType;
using Tensor = TorchSharp.torch.Tensor;

namespace RetinaNet.Checkpoints;

/// <summary>A checkpoint file is damaged, truncated or not in a supported format. The message starts with the file
/// path.</summary>
public class CheckpointFormatException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A pickle names a global outside the allow-list (it would run code if unpickled by Python). Nothing was
/// executed.</summary>
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

    /// <summary>The dtype of a pickled storage class such as <c>torch.FloatStorage</c>; untyped storages hold
    /// bytes.</summary>
    public static DType? ByStorageGlobal(string global) => global switch
    {
        "torch.UntypedStorage" or "torch.storage.UntypedStorage" => All[8],
        _ when global.StartsWith("torch.", StringComparison.Ordinal)
            => All.FirstOrDefault(d => "torch." + d.Storage == global),
        _ => null,
    };

    public static DType? ByScalar(ScalarType s) => All.FirstOrDefault(d => d.Scalar == s);
}

internal static class TensorIo
{
    // TorchSharp's Tensor.bytes span is limited to int.MaxValue bytes, so big tensors go in slices.
    const long ChunkBytes = 1 << 24;

    public delegate void ChunkAction(Span<byte> chunk);

    /// <summary>Calls <paramref name="action"/> on consecutive byte spans covering a contiguous 1-D CPU
    /// tensor.</summary>
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
