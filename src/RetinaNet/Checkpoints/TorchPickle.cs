using RetinaNet.Core;
using System.IO.Compression;
using System.IO.Hashing;
using System.Numerics;
using System.Text;
using TorchSharp;
using Tensor = TorchSharp.torch.Tensor;

namespace RetinaNet.Checkpoints;

/// <summary> Reads and writes PyTorch <c>torch.save</c> files without running anything from them. <para>Loaded trees
/// use: <c>OrderedDictionary&lt;string, object?&gt;</c> for dicts whose keys are all strings (and empty dicts),
/// <c>OrderedDictionary&lt;object, object?&gt;</c> for other dicts (e.g. the int keys of optimizer state; ints are
/// boxed <c>long</c>); both keep the file's order. <c>List&lt;object?&gt;</c> for lists, <c>object?[]</c> for tuples,
/// <c>HashSet&lt;object?&gt;</c> for sets, <c>string</c>, <c>long</c> (<c>BigInteger</c> past 64 bits), <c>double</c>,
/// <c>bool</c>, <c>null</c>, <c>byte[]</c>, <c>torch.ScalarType</c> for dtypes, <c>string</c> for torch.device, and
/// contiguous CPU tensors. Parameters load as plain tensors; OrderedDict attributes (a state_dict's _metadata) are
/// dropped.</para> </summary>
public static class TorchCheckpointFile
{
    const int MaxDepth = 500;
    static readonly BigInteger LegacyMagic = BigInteger.Parse("119547037146038801333356"); // 0x1950a86a20f9469cfc6c

    /// <summary>Loads a torch.save file (zip format of PyTorch >= 1.6, or the older legacy format).</summary>
    /// <exception cref="UnsafePickleException">The pickle names a global outside the allow-list.</exception>
    /// <exception cref="CheckpointFormatException">The file is damaged or not a PyTorch checkpoint.</exception>
    public static object? Load(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            Span<byte> head = stackalloc byte[4];
            int n = fs.ReadAtLeast(head, 4, throwOnEndOfStream: false);
            fs.Position = 0;
            if (n == 4 && head.SequenceEqual("PK\x03\x04"u8)) return LoadZip(path, fs);
            if (n >= 2 && head[0] == 0x80) return LoadLegacy(path, fs);
            throw new CheckpointFormatException(
                $"{path}: not a PyTorch checkpoint (neither a torch.save zip archive nor a pickle)");
        }
        catch (Exception e) when (e is EndOfStreamException or InvalidDataException or OverflowException
                                      or ArgumentException or InvalidCastException or FormatException
                                      or KeyNotFoundException)
        {
            throw new CheckpointFormatException($"{path}: damaged or not a PyTorch checkpoint: {e.Message}", e);
        }
    }

    static object? LoadZip(string path, FileStream fs)
    {
        using var zip = new ZipArchive(fs, ZipArchiveMode.Read, leaveOpen: true);
        // The top folder is named after the file in old versions and "archive" in new ones.
        var pkl = zip.Entries.FirstOrDefault(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal)
                      && e.FullName.IndexOf('/') == e.FullName.Length - 9)
                  ?? throw new CheckpointFormatException($"{path}: zip archive without <name>/data.pkl: " +
                      "not a torch.save checkpoint");
        string prefix = pkl.FullName[..^"data.pkl".Length];
        var order = zip.GetEntry(prefix + "byteorder");
        if (order is not null && Encoding.ASCII.GetString(ReadChecked(path, order)) != "little")
            throw new CheckpointFormatException($"{path}: big-endian checkpoints are not supported");
        var storages = new Dictionary<string, StorageRef>();
        object? raw = new PickleReader(path, new MemoryStream(ReadChecked(path, pkl)), storages).Load();
        // Storages are checked as they load; every other entry now, so a damaged file loads nothing.
        var storageEntries = storages.Keys.Select(k => $"{prefix}data/{k}").ToHashSet();
        foreach (var entry in zip.Entries.Where(e => e != pkl && e != order && !storageEntries.Contains(e.FullName)))
        {
            using var data = entry.Open();
            var crc = new Crc32();
            crc.Append(data);
            VerifyCrc(path, entry, crc);
        }
        return new Materializer(path, s =>
        {
            var entry = zip.GetEntry($"{prefix}data/{s.Key}")
                ?? throw new CheckpointFormatException($"{path}: storage {s.Key} is missing");
            if (entry.Length != s.Numel * s.DType.Size
                || entry.CompressedLength > fs.Length) // before allocating numel elements
                throw new CheckpointFormatException(
                    $"{path}: storage {s.Key} has {entry.Length} bytes, expected {s.Numel} x {s.DType.Size}");
            using var data = entry.Open();
            var crc = new Crc32();
            var tensor = TensorIo.Read(data, s.DType, s.Numel, crc);
            try { VerifyCrc(path, entry, crc); }
            catch { tensor.Dispose(); throw; }
            return tensor;
        }).Run(raw);
    }

    static byte[] ReadChecked(string path, ZipArchiveEntry entry)
    {
        using var s = entry.Open();
        using var ms = new MemoryStream(); // grows with what is really there, whatever the header claims
        s.CopyTo(ms);
        var bytes = ms.ToArray();
        var crc = new Crc32();
        crc.Append(bytes);
        VerifyCrc(path, entry, crc);
        return bytes;
    }

    /// <summary>Stored zip entries carry no other integrity check, and ZipArchive does not check their CRC-32 (at
    /// least when, as here, a reader stops at the entry's length): flipped bytes in a tensor would otherwise load
    /// silently. </summary>
    static void VerifyCrc(string path, ZipArchiveEntry entry, Crc32 crc)
    {
        // torch.save with compute_crc32 turned off stores 0: there is nothing to check against
        if (entry.Crc32 != 0 && crc.GetCurrentHashAsUInt32() != entry.Crc32)
            throw new CheckpointFormatException($"{path}: the file is corrupt ({entry.FullName} fails its CRC-32 " +
                "check: damaged on disk or in transfer); re-download it or restore it from a backup");
    }

    /// <summary>Pre-1.6 layout: pickles of magic number, protocol version, sys info, the data and the storage keys,
    /// then for each key an int64 element count and the raw elements.</summary>
    static object? LoadLegacy(string path, FileStream fs)
    {
        var storages = new Dictionary<string, StorageRef>();
        object? Next() => new PickleReader(path, fs, storages).Load();
        if (Next() is not BigInteger magic || magic != LegacyMagic)
            throw new CheckpointFormatException($"{path}: a pickle, but not a torch.save file (bad magic number)");
        if (Next() is not 1001L)
            throw new CheckpointFormatException($"{path}: unsupported legacy torch.save protocol version");
        if (Next() is RawDict info && info.Items.Any(kv => kv.Key is "little_endian" && kv.Value is false))
            throw new CheckpointFormatException($"{path}: big-endian checkpoints are not supported");
        object? raw = Next();
        if (Next() is not List<object?> keys)
            throw new CheckpointFormatException($"{path}: legacy storage key list is missing");
        var offsets = new Dictionary<string, long>();
        Span<byte> count = stackalloc byte[8];
        foreach (var key in keys)
        {
            if (key is not string k || !storages.TryGetValue(k, out var s))
                throw new CheckpointFormatException($"{path}: legacy storage {key} is not used by the data");
            fs.ReadExactly(count);
            if (BitConverter.ToInt64(count) != s.Numel || fs.Length - fs.Position < s.Numel * s.DType.Size)
                throw new CheckpointFormatException($"{path}: legacy storage {k} is truncated or has the wrong size");
            offsets[k] = fs.Position;
            fs.Seek(s.Numel * s.DType.Size, SeekOrigin.Current);
        }
        return new Materializer(path, s =>
        {
            fs.Position = offsets.TryGetValue(s.Key, out long at) ? at
                : throw new CheckpointFormatException($"{path}: storage {s.Key} is missing");
            return TensorIo.Read(fs, s.DType, s.Numel);
        }).Run(raw);
    }

    /// <summary>Turns the unpickler's placeholders into the public tree, loading each storage once.</summary>
    sealed class Materializer(string path, Func<StorageRef, Tensor> loadStorage)
    {
        readonly Dictionary<StorageRef, Tensor> storages = new(ReferenceEqualityComparer.Instance);
        readonly Dictionary<object, object> done =
            new(ReferenceEqualityComparer.Instance); // keeps shared objects shared
        readonly List<Tensor> created = [];

        public object? Run(object? raw)
        {
            try { return Convert(raw, 0); }
            catch { foreach (var t in created) t.Dispose(); throw; }
            finally { foreach (var s in storages.Values) s.Dispose(); } // returned tensors keep their memory alive
        }

        object? Convert(object? v, int depth)
        {
            if (depth > MaxDepth) throw new CheckpointFormatException($"{path}: nested deeper than {MaxDepth} levels");
            if (v is null || v is string || v.GetType().IsValueType || v is byte[]) return v;
            if (done.TryGetValue(v, out var known)) return known;
            switch (v)
            {
                case RawDict d when d.Items.All(kv => kv.Key is string):
                    var sd = new OrderedDictionary<string, object?>();
                    done[v] = sd;
                    foreach (var (k, x) in d.Items)
                        sd[(string)k!] = Convert(x, depth + 1); // Python: the last value wins
                    return sd;
                case RawDict d:
                    var od = new OrderedDictionary<object, object?>();
                    done[v] = od;
                    foreach (var (k, x) in d.Items)
                        od[Convert(k, depth + 1) ?? throw new CheckpointFormatException(
                            $"{path}: None as a dict key is not supported")] = Convert(x, depth + 1);
                    return od;
                case List<object?> list: // converted in place, so shared and self-containing lists stay so
                    done[v] = v;
                    for (int i = 0; i < list.Count; i++) list[i] = Convert(list[i], depth + 1);
                    return list;
                case object?[] tuple:
                    done[v] = v;
                    for (int i = 0; i < tuple.Length; i++) tuple[i] = Convert(tuple[i], depth + 1);
                    return tuple;
                case HashSet<object?> set:
                    return done[v] = new HashSet<object?>(set.Select(x => Convert(x, depth + 1)));
                case TensorRef t:
                    var tensor = MakeTensor(t);
                    created.Add(tensor);
                    return done[v] = tensor;
                case StorageRef s: // a bare storage: its elements as a 1-D tensor
                    var alias = Storage(s).alias();
                    created.Add(alias);
                    return done[v] = alias;
                default:
                    throw new CheckpointFormatException(
                        $"{path}: unsupported value {(v is PickleGlobal g ? g.Name : v.GetType().Name)} in the pickle");
            }
        }

        Tensor Storage(StorageRef s)
        {
            if (!storages.TryGetValue(s, out var t)) storages[s] = t = loadStorage(s);
            return t;
        }

        Tensor MakeTensor(TensorRef r)
        {
            // Check the view lies inside its storage: as_strided would otherwise read foreign memory.
            if (r.Size.Length != r.Stride.Length || r.Offset < 0 || r.Size.Any(x => x < 0) || r.Stride.Any(x => x < 0))
                throw new CheckpointFormatException($"{path}: invalid tensor size/stride");
            long numel = 1, last = r.Offset, contiguousStride = 1;
            bool contiguous = true;
            for (int i = r.Size.Length - 1; i >= 0; i--)
            {
                numel = checked(numel * r.Size[i]);
                last = checked(last + (r.Size[i] - 1) * r.Stride[i]);
                contiguous &= r.Size[i] == 1 || r.Stride[i] == contiguousStride;
                contiguousStride = checked(contiguousStride * r.Size[i]);
            }
            if (numel > 0 ? last >= r.Storage.Numel : r.Offset > r.Storage.Numel)
                throw new CheckpointFormatException(
                    $"{path}: tensor view reaches past the end of storage {r.Storage.Key}");
            var storage = Storage(r.Storage);
            if (contiguous && r.Offset == 0 && numel == r.Storage.Numel)
                return storage.view(r.Size); // the usual case: no copy
            using var view = storage.as_strided(r.Size, r.Stride, r.Offset);
            var result = torch.empty(r.Size, r.Storage.DType.Scalar);
            result.copy_(view);
            return result;
        }
    }

    /// <summary> Saves a tree (see the class summary for the types; any IDictionary and IList, ints of any width) in
    /// torch.save's zip format, protocol 2. PyTorch reads it with torch.load, and with weights_only=True too (torch
    /// &lt; 2.0's weights_only unpickler cannot read floats, bytes or sets, in torch's own files as well). Tensors are
    /// written contiguous, as CPU tensors. Atomic: on failure an existing file at <paramref name="path"/> is left
    /// unchanged. </summary> <exception cref="ArgumentException">The tree holds a value of a type that cannot be
    /// saved, or contains itself.</exception>
    public static void Save(string path, object? root) => AtomicFile.Write(path, fs =>
    {
        var pickler = new PickleWriter();
        byte[] pkl = pickler.Write(root);
        var zip = new TorchZipWriter(fs);
        zip.Add("archive/data.pkl", pkl);
        zip.Add("archive/byteorder", "little"u8);
        foreach (var (key, tensor) in pickler.Storages) zip.Add($"archive/data/{key}", tensor);
        zip.Add("archive/version", "3\n"u8);
        zip.Finish();
    });
}
