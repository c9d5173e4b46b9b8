using System.Buffers.Binary;
using System.Text;

namespace RetinaNet.Training;

/// <summary>Writes TensorBoard scalar summaries to an event file <c>events.out.tfevents.{unix seconds}.{hostname}</c>
/// in a log directory: TFRecord-framed tensorflow.Event protobufs, hand-encoded (no protobuf dependency). The first
/// record carries file_version "brain.Event:2"; each scalar is an Event {wall_time, step, summary {value {tag,
/// simple_value}}}.</summary>
public sealed class TensorBoardWriter : IDisposable
{
    readonly FileStream stream;
    readonly Func<DateTimeOffset> clock;

    public string FilePath { get; }

    /// <param name="clock">Wall time source (tests); defaults to the system clock.</param>
    public TensorBoardWriter(string logDir, Func<DateTimeOffset>? clock = null)
    {
        this.clock = clock ?? (() => DateTimeOffset.UtcNow);
        Directory.CreateDirectory(logDir);
        var now = this.clock();
        FilePath = Path.Combine(logDir, $"events.out.tfevents.{now.ToUnixTimeSeconds()}.{Environment.MachineName}");
        stream = new FileStream(FilePath, FileMode.Create, FileAccess.Write, FileShare.Read);
        var ev = new List<byte>();
        Proto.Double(ev, 1, WallTime(now));
        Proto.Bytes(ev, 3, Encoding.UTF8.GetBytes("brain.Event:2"));
        WriteRecord(ev.ToArray());
        Flush();
    }

    /// <summary>Appends one scalar (stored as float32, as TensorBoard's simple_value).</summary>
    public void AddScalar(string tag, double value, long step)
    {
        var summaryValue = new List<byte>();
        Proto.Bytes(summaryValue, 1, Encoding.UTF8.GetBytes(tag));
        Proto.Float(summaryValue, 2, (float)value);
        var summary = new List<byte>();
        Proto.Bytes(summary, 1, summaryValue.ToArray());
        var ev = new List<byte>();
        Proto.Double(ev, 1, WallTime(clock()));
        Proto.Varint(ev, 2, unchecked((ulong)step));
        Proto.Bytes(ev, 5, summary.ToArray());
        WriteRecord(ev.ToArray());
    }

    public void Flush() => stream.Flush();

    public void Dispose() => stream.Dispose();

    static double WallTime(DateTimeOffset t) => (t - DateTimeOffset.UnixEpoch).Ticks / (double)TimeSpan.TicksPerSecond;

    /// <summary>TFRecord: uint64 length, masked CRC32C of the length bytes, data, masked CRC32C of data (little-endian).</summary>
    void WriteRecord(byte[] data)
    {
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], Crc32C.Masked(header[..8]));
        Span<byte> footer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(footer, Crc32C.Masked(data));
        stream.Write(header);
        stream.Write(data);
        stream.Write(footer);
    }

    /// <summary>The few protobuf encodings an Event needs.</summary>
    static class Proto
    {
        static void Raw(List<byte> o, ulong v)
        {
            while (v >= 0x80) { o.Add((byte)(v | 0x80)); v >>= 7; }
            o.Add((byte)v);
        }

        static void Key(List<byte> o, int field, int wireType) => Raw(o, (ulong)(field << 3 | wireType));

        public static void Varint(List<byte> o, int field, ulong v) { Key(o, field, 0); Raw(o, v); }

        public static void Double(List<byte> o, int field, double v)
        {
            Key(o, field, 1);
            Span<byte> b = stackalloc byte[8];
            BinaryPrimitives.WriteDoubleLittleEndian(b, v);
            o.AddRange(b.ToArray());
        }

        public static void Float(List<byte> o, int field, float v)
        {
            Key(o, field, 5);
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteSingleLittleEndian(b, v);
            o.AddRange(b.ToArray());
        }

        public static void Bytes(List<byte> o, int field, byte[] v)
        {
            Key(o, field, 2);
            Raw(o, (ulong)v.Length);
            o.AddRange(v);
        }
    }
}
