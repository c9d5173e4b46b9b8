using System.Buffers.Binary;
using Google.Protobuf;
using Tensorboard;

namespace RetinaNet.Training;

/// <summary>Writes TensorBoard scalar summaries to an event file <c>events.out.tfevents.{unix seconds}.{hostname}</c>
/// in a log directory: TFRecord-framed tensorboard.Event protobufs (TorchSharp ships the generated classes, namespace
/// Tensorboard; not its SummaryWriter, which takes wall time as float and steps as int). The first record carries
/// file_version "brain.Event:2"; each scalar is an Event {wall_time, step, summary {value {tag, simple_value}}}.
/// </summary>
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
        WriteRecord(new Event { WallTime = WallTime(now), FileVersion = "brain.Event:2" });
        Flush();
    }

    /// <summary>Appends one scalar (stored as float32, as TensorBoard's simple_value).</summary>
    public void AddScalar(string tag, double value, long step)
    {
        var summary = new Summary { Value = { new Summary.Types.Value { Tag = tag, SimpleValue = (float)value } } };
        WriteRecord(new Event { WallTime = WallTime(clock()), Step = step, Summary = summary });
    }

    public void Flush() => stream.Flush();

    public void Dispose() => stream.Dispose();

    static double WallTime(DateTimeOffset t) => (t - DateTimeOffset.UnixEpoch).Ticks / (double)TimeSpan.TicksPerSecond;

    /// <summary>TFRecord: uint64 length, masked CRC32C of the length bytes, data, masked CRC32C of data
    /// (little-endian).</summary>
    void WriteRecord(Event ev)
    {
        var data = ev.ToByteArray();
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], Crc32C.Masked(header[..8]));
        Span<byte> footer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(footer, Crc32C.Masked(data));
        stream.Write(header);
        stream.Write(data);
        stream.Write(footer);
    }
}
