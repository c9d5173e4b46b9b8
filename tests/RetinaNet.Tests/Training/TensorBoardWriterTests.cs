using System.Buffers.Binary;
using System.Text;
using RetinaNet.Training;
using Xunit;

namespace RetinaNet.Tests.Training;

public class TensorBoardWriterTests
{
    [Fact]
    public void Crc32c_check_values()
    {
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));
        // RFC 3720 (iSCSI) appendix B.4 vectors
        Assert.Equal(0x8A9136AAu, Crc32C.Compute(new byte[32]));
        Assert.Equal(0x62A8AB43u, Crc32C.Compute(Enumerable.Repeat((byte)0xFF, 32).ToArray()));
        Assert.Equal(0x46DD794Eu, Crc32C.Compute(Enumerable.Range(0, 32).Select(i => (byte)i).ToArray()));
        Assert.Equal(0u, Crc32C.Compute([]));
    }

    [Fact]
    public void Records_parse_back_with_valid_crcs()
    {
        var dir = Paths.TempDir();
        var t0 = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_250);
        var now = t0;
        string path;
        using (var w = new TensorBoardWriter(dir, () => now))
        {
            path = w.FilePath;
            now = t0.AddSeconds(1.5);
            w.AddScalar("focal loss", 0.125, 10);
            w.AddScalar("lr", 0.01, 1_000_000_000_000);
            w.Flush();
            w.AddScalar("box loss", -3.5, 0);
        }
        Assert.Equal(dir, Path.GetDirectoryName(path));
        Assert.Equal($"events.out.tfevents.1700000000.{Environment.MachineName}", Path.GetFileName(path));

        var records = Reader.Records(File.ReadAllBytes(path));
        Assert.Equal(4, records.Count);
        var first = Reader.Event(records[0]);
        Assert.Equal("brain.Event:2", first.FileVersion);
        Assert.Equal(1_700_000_000.25, first.WallTime);

        var scalars = records.Skip(1).Select(Reader.Event).ToArray();
        Assert.Equal(["focal loss", "lr", "box loss"], scalars.Select(e => e.Tag));
        Assert.Equal([0.125f, 0.01f, -3.5f], scalars.Select(e => e.Value));
        Assert.Equal([10L, 1_000_000_000_000L, 0L], scalars.Select(e => e.Step));
        Assert.All(scalars, e => Assert.Equal(1_700_000_001.75, e.WallTime));
    }

    /// <summary>A whole file, byte for byte, encoded by hand from the protobuf wire format and TFRecord framing; the
    /// masked CRC-32C values were worked out with a bitwise CRC outside this code base.</summary>
    [Fact]
    public void One_scalar_file_matches_hand_encoded_bytes()
    {
        var dir = Paths.TempDir();
        string path;
        using (var w = new TensorBoardWriter(dir, () => DateTimeOffset.FromUnixTimeMilliseconds(1500)))
        {
            path = w.FilePath;
            w.AddScalar("x", 0.5, 10);
        }
        byte[] wallTime = [0x09, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F]; // field 1, fixed64: 1.5
        byte[] version = [.. wallTime, 0x1A, 13, .. "brain.Event:2"u8]; // field 3, length-delimited
        byte[] scalar = [.. wallTime, 0x10, 10, // step: field 2, varint
            0x2A, 10, 0x0A, 8, // summary (field 5, 10 bytes) holding one value (field 1, 8 bytes)
            0x0A, 1, (byte)'x', 0x15, 0, 0, 0, 0x3F]; // tag (field 1) "x", simple_value (field 2, fixed32) 0.5
        // Each record: uint64 length, masked CRC of those 8 bytes, the event, masked CRC of the event.
        byte[] expected = [24, 0, 0, 0, 0, 0, 0, 0, 0xA3, 0x7F, 0x4B, 0x22, .. version, 0x2A, 0x28, 0x64, 0x6C,
            23, 0, 0, 0, 0, 0, 0, 0, 0xE7, 0xCE, 0xF8, 0x1E, .. scalar, 0x05, 0x7F, 0x6F, 0x5A];
        Assert.Equal(expected, File.ReadAllBytes(path));
    }

    [Fact]
    public void A_corrupted_byte_is_caught_by_the_reader()
    {
        var dir = Paths.TempDir();
        string path;
        using (var w = new TensorBoardWriter(dir)) { path = w.FilePath; w.AddScalar("x", 1, 1); }
        var bytes = File.ReadAllBytes(path);
        bytes[^6] ^= 1; // inside the last record's data
        Assert.Throws<InvalidDataException>(() => Reader.Records(bytes));
    }

    /// <summary>An independent TFRecord + Event reader (bitwise CRC, no table).</summary>
    static class Reader
    {
        static uint Crc(ReadOnlySpan<byte> data)
        {
            uint crc = ~0u;
            foreach (byte b in data)
            {
                crc ^= b;
                for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82F63B78u & (uint)-(int)(crc & 1));
            }
            return ~crc;
        }

        static uint Mask(uint crc) => unchecked(((crc >> 15) | (crc << 17)) + 0xa282ead8u);

        public static List<byte[]> Records(byte[] file)
        {
            var records = new List<byte[]>();
            int pos = 0;
            while (pos < file.Length)
            {
                ulong length = BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(pos, 8));
                if (BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(pos + 8, 4)) != Mask(Crc(file.AsSpan(pos, 8))))
                    throw new InvalidDataException($"length crc at {pos}");
                var data = file.AsSpan(pos + 12, (int)length);
                if (BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(pos + 12 + (int)length, 4)) != Mask(Crc(data)))
                    throw new InvalidDataException($"data crc at {pos}");
                records.Add(data.ToArray());
                pos += 12 + (int)length + 4;
            }
            return records;
        }

        public record Parsed(double WallTime, long Step, string? FileVersion, string? Tag, float Value);

        static ulong Varint(byte[] b, ref int p)
        {
            ulong v = 0;
            for (int shift = 0; ; shift += 7)
            {
                byte x = b[p++];
                v |= (ulong)(x & 0x7F) << shift;
                if (x < 0x80) return v;
            }
        }

        /// <summary>(field, wire type, varint / fixed value bits, length-delimited payload).</summary>
        static IEnumerable<(int Field, int Wire, ulong Number, byte[]? Payload)> Fields(byte[] b)
        {
            int p = 0;
            var list = new List<(int, int, ulong, byte[]?)>();
            while (p < b.Length)
            {
                ulong key = Varint(b, ref p);
                int field = (int)(key >> 3), wire = (int)(key & 7);
                switch (wire)
                {
                    case 0: list.Add((field, wire, Varint(b, ref p), null)); break;
                    case 1: list.Add((field, wire, BitConverter.ToUInt64(b, p), null)); p += 8; break;
                    case 5: list.Add((field, wire, BitConverter.ToUInt32(b, p), null)); p += 4; break;
                    case 2:
                        int n = (int)Varint(b, ref p);
                        list.Add((field, wire, 0, b[p..(p + n)]));
                        p += n;
                        break;
                    default: throw new InvalidDataException($"wire type {wire}");
                }
            }
            return list;
        }

        public static Parsed Event(byte[] data)
        {
            double wall = 0; long step = 0; string? version = null, tag = null; float value = float.NaN;
            foreach (var (field, wire, number, payload) in Fields(data))
            {
                if (field == 1 && wire == 1) wall = BitConverter.UInt64BitsToDouble(number);
                else if (field == 2 && wire == 0) step = (long)number;
                else if (field == 3 && wire == 2) version = Encoding.UTF8.GetString(payload!);
                else if (field == 5 && wire == 2)
                    foreach (var (sf, sw, _, sp) in Fields(payload!))
                    {
                        Assert.True(sf == 1 && sw == 2, "Summary.value");
                        foreach (var (vf, vw, vn, vp) in Fields(sp!))
                        {
                            if (vf == 1 && vw == 2) tag = Encoding.UTF8.GetString(vp!);
                            else if (vf == 2 && vw == 5) value = BitConverter.UInt32BitsToSingle((uint)vn);
                            else Assert.Fail($"unexpected Summary.Value field {vf}/{vw}");
                        }
                    }
                else Assert.Fail($"unexpected Event field {field}/{wire}");
            }
            return new Parsed(wall, step, version, tag, value);
        }
    }
}
