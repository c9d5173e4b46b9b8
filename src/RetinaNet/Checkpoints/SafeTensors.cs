using RetinaNet.Core;
using System.Buffers;
using System.Buffers.Binary;
using System.Text.Json;
using Tensor = TorchSharp.torch.Tensor;

namespace RetinaNet.Checkpoints;

/// <summary>
/// The safetensors format: an 8-byte little-endian header length, a JSON header
/// (<c>{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}</c>),
/// then the raw little-endian tensor bytes, offsets counted from the end of the header.
/// </summary>
public static class SafeTensorsFile
{
    const long MaxHeader = 100_000_000; // the reference implementation's limit

    /// <summary>Loads all tensors (CPU, contiguous), in the header's order.</summary>
    public static Dictionary<string, Tensor> Load(string path) => Load(path, out _);

    /// <summary>Loads all tensors and the <c>__metadata__</c> strings.</summary>
    /// <exception cref="CheckpointFormatException">The file is truncated, its header is invalid or its offsets are out
    /// of range.</exception>
    public static Dictionary<string, Tensor> Load(string path, out Dictionary<string, string> metadata)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        CheckpointFormatException Fail(string message) => new($"{path}: {message}");
        var result = new Dictionary<string, Tensor>();
        try
        {
            Span<byte> prefix = stackalloc byte[8];
            if (fs.ReadAtLeast(prefix, 8, throwOnEndOfStream: false) < 8)
                throw Fail("too short for a safetensors file");
            ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
            if (headerLength > MaxHeader || headerLength > (ulong)(fs.Length - 8))
                throw Fail(
                    $"header length {headerLength} is larger than the file: not a safetensors file, or truncated");
            var header = new byte[headerLength];
            fs.ReadExactly(header);
            long dataStart = 8 + (long)headerLength, dataLength = fs.Length - dataStart;

            using var doc = JsonDocument.Parse(header);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Fail("header is not a JSON object");
            metadata = [];
            var specs = new List<(string Name, DType DType, long[] Shape, long Begin, long End)>();
            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                var v = entry.Value;
                if (entry.Name == "__metadata__")
                {
                    foreach (var m in v.EnumerateObject())
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()!
                            : throw Fail($"metadata {m.Name} is not a string");
                    continue;
                }
                string dtypeName = v.GetProperty("dtype").GetString() ?? "";
                var dtype = DType.All.FirstOrDefault(d => d.SafeTensors == dtypeName)
                    ?? throw Fail($"tensor {entry.Name}: unsupported dtype {dtypeName}");
                long[] shape = [.. v.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64())];
                long[] offsets = [.. v.GetProperty("data_offsets").EnumerateArray().Select(x => x.GetInt64())];
                long numel = shape.Aggregate(1L,
                    (a, b) => b >= 0 ? checked(a * b) : throw Fail($"tensor {entry.Name}: negative dimension"));
                if (offsets is not [var begin, var end] || begin < 0 || end < begin || end > dataLength)
                    throw Fail($"tensor {entry.Name}: data_offsets [{string.Join(", ", offsets)}] out of range " +
                        $"(data section is {dataLength} bytes)");
                if (end - begin != checked(numel * dtype.Size))
                    throw Fail($"tensor {entry.Name}: data_offsets cover {end - begin} bytes " +
                        $"but {dtypeName}[{string.Join(", ", shape)}] needs {numel * dtype.Size}");
                if (specs.Any(s => s.Name == entry.Name)) throw Fail($"tensor {entry.Name} is listed twice");
                specs.Add((entry.Name, dtype, shape, begin, end));
            }
            // As in the reference implementation, the tensors must tile the data section exactly: no overlap, no hole.
            long covered = 0;
            foreach (var s in specs.OrderBy(s => s.Begin).ThenBy(s => s.End))
                covered = s.Begin == covered ? s.End
                    : throw Fail($"tensor {s.Name}: data_offsets overlap another tensor or leave a gap");
            if (covered != dataLength) throw Fail($"tensors cover {covered} bytes of a {dataLength}-byte data section");

            foreach (var (name, dtype, shape, begin, _) in specs)
            {
                fs.Position = dataStart + begin;
                using var flat = TensorIo.Read(fs, dtype, shape.Aggregate(1L, (a, b) => a * b));
                result[name] = flat.view(shape);
            }
            return result;
        }
        catch (Exception e)
        {
            foreach (var t in result.Values) t.Dispose();
            if (e is JsonException or InvalidOperationException or KeyNotFoundException or FormatException
                or OverflowException or EndOfStreamException)
                throw new CheckpointFormatException($"{path}: invalid safetensors file: {e.Message}", e);
            throw;
        }
    }

    /// <summary>Saves tensors (any device and layout; written contiguous) and optional metadata, atomically.</summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, t) in tensors)
            {
                if (name == "__metadata__") throw new ArgumentException("a tensor cannot be named __metadata__");
                var dtype = DType.ByScalar(t.dtype)
                    ?? throw new ArgumentException($"tensor {name}: dtype {t.dtype} is not supported");
                long size = t.numel() * dtype.Size;
                json.WriteStartObject(name);
                json.WriteString("dtype", dtype.SafeTensors);
                json.WriteStartArray("shape");
                foreach (var d in t.shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset += size);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }
        int padded = (header.WrittenCount + 7) / 8 * 8; // the reference writer pads the header with spaces to 8 bytes
        AtomicFile.Write(path, fs =>
        {
            Span<byte> prefix = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)padded);
            fs.Write(prefix);
            fs.Write(header.WrittenSpan);
            for (int i = header.WrittenCount; i < padded; i++) fs.WriteByte((byte)' ');
            foreach (var t in tensors.Values)
                TensorIo.WithFlatCpu(t, flat => TensorIo.ForEachChunk(flat, c => fs.Write(c)));
        });
    }
}
