using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using Tensor = TorchSharp.torch.Tensor;

namespace RetinaNet.Checkpoints;

/// <summary>
/// Writes an uncompressed zip the way PyTorch's PyTorchStreamWriter lays it out: every entry's data starts on a
/// 64-byte boundary, padded by an "FB" extra field of 'Z's in the local header (torch can then map storages in place).
/// No zip64: entries and archive must stay under 4 GiB.
/// </summary>
internal sealed class TorchZipWriter(Stream output)
{
    const int Alignment = 64;
    readonly List<(byte[] Name, uint Crc, long Size, long Offset)> entries = [];

    public void Add(string name, ReadOnlySpan<byte> data)
    {
        Header(name, data.Length, Crc32.HashToUInt32(data));
        output.Write(data);
    }

    /// <summary>Adds a tensor's values, contiguous, as one entry (two passes: the local header needs the CRC
    /// first).</summary>
    public void Add(string name, Tensor tensor) => TensorIo.WithFlatCpu(tensor, flat =>
    {
        var crc = new Crc32();
        TensorIo.ForEachChunk(flat, c => crc.Append(c));
        Header(name, flat.numel() * flat.element_size(), crc.GetCurrentHashAsUInt32());
        TensorIo.ForEachChunk(flat, c => output.Write(c));
    });

    void Header(string name, long size, uint crc)
    {
        long offset = output.Position;
        if (size >= uint.MaxValue || offset >= uint.MaxValue)
            throw new NotSupportedException("checkpoints over 4 GiB need zip64, which this writer does not produce");
        var nameBytes = Encoding.UTF8.GetBytes(name);
        int pad = (int)((Alignment - (offset + 30 + nameBytes.Length + 4) % Alignment) % Alignment);
        Span<byte> h = stackalloc byte[30];
        h.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(h, 0x04034b50);
        Common(h[4..], crc, size, nameBytes.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(h[28..], (ushort)(pad + 4));
        output.Write(h);
        output.Write(nameBytes);
        output.Write([(byte)'F', (byte)'B', (byte)pad, 0]);
        for (int i = 0; i < pad; i++) output.WriteByte((byte)'Z');
        entries.Add((nameBytes, crc, size, offset));
    }

    /// <summary>The fields that local headers and central directory records share, from "version needed" to the name
    /// length.</summary>
    static void Common(Span<byte> f, uint crc, long size, int nameLength)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(f, 20);            // version needed: 2.0; flags 0, method 0 (stored)
        BinaryPrimitives.WriteUInt16LittleEndian(f[8..], 0x21);     // date 1980-01-01, time 0: reproducible files
        BinaryPrimitives.WriteUInt32LittleEndian(f[10..], crc);
        BinaryPrimitives.WriteUInt32LittleEndian(f[14..], (uint)size); // compressed = uncompressed
        BinaryPrimitives.WriteUInt32LittleEndian(f[18..], (uint)size);
        BinaryPrimitives.WriteUInt16LittleEndian(f[22..], (ushort)nameLength);
    }

    /// <summary>Writes the central directory and its end record.</summary>
    public void Finish()
    {
        if (entries.Count >= ushort.MaxValue) throw new NotSupportedException("too many zip entries without zip64");
        long start = output.Position;
        Span<byte> c = stackalloc byte[46];
        foreach (var (name, crc, size, offset) in entries)
        {
            c.Clear();
            BinaryPrimitives.WriteUInt32LittleEndian(c, 0x02014b50);
            BinaryPrimitives.WriteUInt16LittleEndian(c[4..], 20); // made by
            Common(c[6..], crc, size, name.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(c[42..], (uint)offset);
            output.Write(c);
            output.Write(name);
        }
        long end = output.Position;
        if (end >= uint.MaxValue) throw new NotSupportedException("checkpoints over 4 GiB need zip64, which this "
            + "writer does not produce");
        Span<byte> e = stackalloc byte[22];
        e.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(e, 0x06054b50);
        BinaryPrimitives.WriteUInt16LittleEndian(e[8..], (ushort)entries.Count);
        BinaryPrimitives.WriteUInt16LittleEndian(e[10..], (ushort)entries.Count);
        BinaryPrimitives.WriteUInt32LittleEndian(e[12..], (uint)(end - start));
        BinaryPrimitives.WriteUInt32LittleEndian(e[16..], (uint)start);
        output.Write(e);
    }
}
