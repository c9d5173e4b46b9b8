using System.Buffers.Binary;
using System.Collections;
using System.IO.Compression;
using System.Numerics;
using System.Text;
using System.Text.Json;
using RetinaNet.Checkpoints;
using RetinaNet.Native;
using TorchSharp;
using Xunit;
using ScalarType = TorchSharp.torch.ScalarType;
using Tensor = TorchSharp.torch.Tensor;

namespace RetinaNet.Tests.Checkpoints;

/// <summary>
/// Fixtures come from tests/fixtures/make_checkpoint_fixtures.py (torch 1.13); each X has X.json with the values
/// torch itself read back, so these tests compare the C# reader with PyTorch, not with the C# writer.
/// </summary>
public sealed class CheckpointFileTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("retinanet-ckpt-tests-").FullName;
    readonly DisposeScope scope = torch.NewDisposeScope(); // frees every tensor a test loads or makes

    public void Dispose()
    {
        scope.Dispose();
        Directory.Delete(dir, recursive: true);
    }

    static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "checkpoints", name);

    static JsonElement Expected(string name) =>
        JsonDocument.Parse(File.ReadAllText(Fixture(name + ".json"))).RootElement;

    [Theory]
    [InlineData("tensors.pth")]
    [InlineData("odtk_like.pth")]
    [InlineData("legacy.pth")]
    public void LoadsWhatPyTorchWrote(string name)
    {
        var loaded = TorchCheckpointFile.Load(Fixture(name));
        AssertMatches(Expected(name), loaded, name);
    }

    [Fact]
    public void OdtkCheckpointHasUsableTypes()
    {
        var ckpt = Assert.IsType<OrderedDictionary<string, object?>>(
            TorchCheckpointFile.Load(Fixture("odtk_like.pth")));
        Assert.Equal(new[] { "backbone", "classes", "state_dict", "ratios", "scales", "angles", "rotated_bbox",
            "anchor_ious", "iteration", "optimizer", "scheduler" }, ckpt.Keys);
        Assert.Equal(3L, ckpt["classes"]);
        Assert.Equal(7L, ckpt["iteration"]);
        var stateDict = Assert.IsType<OrderedDictionary<string, object?>>(ckpt["state_dict"]);
        Assert.Equal(new[] { "0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
            "1.num_batches_tracked" }, stateDict.Keys);
        var weight = Assert.IsType<Tensor>(stateDict["0.weight"]);
        Assert.Equal(new long[] { 2, 3, 1, 1 }, weight.shape);
        Assert.True(weight.is_contiguous());
        Assert.Equal(ScalarType.Int64, Assert.IsType<Tensor>(stateDict["1.num_batches_tracked"]).dtype);
        var optimizer = Assert.IsType<OrderedDictionary<string, object?>>(ckpt["optimizer"]);
        var state = Assert.IsType<OrderedDictionary<object, object?>>(optimizer["state"]); // int keys
        var first = Assert.IsType<OrderedDictionary<string, object?>>(state[0L]);
        Assert.IsType<Tensor>(first["momentum_buffer"]);
        var group = Assert.IsType<OrderedDictionary<string, object?>>(
            Assert.IsType<List<object?>>(optimizer["param_groups"])[0]);
        Assert.Equal(0.01, group["lr"]);
        Assert.Equal(new List<object?> { 0L, 1L, 2L, 3L }, group["params"]);
    }

    [Theory]
    [InlineData("evil.pth", "posix.system")]          // protocol 2 GLOBAL inside a torch-like zip
    [InlineData("evil_plain.pkl", "posix.system")]    // a bare pickle (goes through the legacy reader)
    [InlineData("evil_builtins.pth", "builtins.eval")] // protocol 4 STACK_GLOBAL
    public void RefusesPicklesThatCallOutsideTheAllowList(string name, string global)
    {
        bool existed = File.Exists("/tmp/pwned");
        var e = Assert.Throws<UnsafePickleException>(() => TorchCheckpointFile.Load(Fixture(name)));
        Assert.StartsWith(Fixture(name) + ": refusing to load", e.Message);
        Assert.Contains($"calls {global}, which is not on the allow-list", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.True(existed || !File.Exists("/tmp/pwned"), "the payload ran");
    }

    [Fact]
    public void RoundTripsARichTree()
    {
        var tree = RichTree();
        string path = Path.Combine(dir, "rich.pth");
        TorchCheckpointFile.Save(path, tree);
        var loaded = Assert.IsType<OrderedDictionary<string, object?>>(TorchCheckpointFile.Load(path));
        AssertTreeEqual(tree, loaded, "root");
        Assert.Same(loaded["same1"], loaded["same2"]); // one tensor saved twice stays one tensor
        var many = Assert.IsType<List<object?>>(loaded["many"]);
        Assert.Same(many[299], loaded["late"]); // memo ids past 255 (LONG_BINPUT / LONG_BINGET)
    }

    [Fact]
    public void SavedFileIsLaidOutLikeTorchSave()
    {
        string path = Path.Combine(dir, "layout.pth");
        TorchCheckpointFile.Save(path, new Dictionary<string, object?> { ["a"] = torch.ones(3),
            ["b"] = torch.zeros(2, 2, dtype: ScalarType.Float16) });
        var bytes = File.ReadAllBytes(path);
        var names = new List<string>();
        // Walk the local headers: every entry's data must start on a 64-byte boundary, as
        // PyTorchStreamWriter aligns it.
        for (int at = 0; BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at)) == 0x04034b50;)
        {
            int size = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(at + 18));
            int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(at + 26));
            int extraLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(at + 28));
            names.Add(Encoding.UTF8.GetString(bytes, at + 30, nameLength));
            int data = at + 30 + nameLength + extraLength;
            Assert.Equal(0, data % 64);
            at = data + size;
        }
        Assert.Equal(new[] { "archive/data.pkl", "archive/byteorder", "archive/data/0", "archive/data/1",
            "archive/version" }, names);
    }

    [Fact]
    public void FailedSaveLeavesThePreviousFileUntouched()
    {
        string path = Path.Combine(dir, "model.pth");
        TorchCheckpointFile.Save(path, new Dictionary<string, object?> { ["w"] = Scalars.Arange(10) });
        var before = File.ReadAllBytes(path);
        var bad = new Dictionary<string, object?>
        {
            ["w"] = Scalars.Arange(100),
            ["deep"] = new List<object?> { 1,
                new Dictionary<string, object?> { ["oops"] = new Uri("http://example.com") } },
        };
        var e = Assert.Throws<ArgumentException>(() => TorchCheckpointFile.Save(path, bad));
        Assert.Contains("root['deep'][1]['oops']", e.Message);
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal(new[] { path }, Directory.GetFiles(dir)); // no temp file left behind

        var cyclic = new List<object?>();
        cyclic.Add(cyclic);
        Assert.Throws<ArgumentException>(() => TorchCheckpointFile.Save(path, cyclic));
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal(new[] { path }, Directory.GetFiles(dir));
    }

    [Fact]
    public void DamagedFilesAreFormatErrorsNamingThePath()
    {
        var good = File.ReadAllBytes(Fixture("tensors.pth"));
        var legacy = File.ReadAllBytes(Fixture("legacy.pth"));
        var cases = new Dictionary<string, byte[]>
        {
            ["truncated.pth"] = good[..(good.Length / 2)],
            ["no-central-directory.pth"] = good[..(good.Length - 30)],
            ["garbage.pth"] = Encoding.ASCII.GetBytes("this is not a checkpoint at all"),
            ["empty.pth"] = [],
            ["truncated-legacy.pth"] = legacy[..(legacy.Length - 5)],
            ["truncated-pickle.pth"] = legacy[..40],
        };
        foreach (var (name, content) in cases)
        {
            string path = Path.Combine(dir, name);
            File.WriteAllBytes(path, content);
            var e = Assert.ThrowsAny<CheckpointFormatException>(() => TorchCheckpointFile.Load(path));
            Assert.StartsWith(path + ": ", e.Message);
            Assert.IsNotType<UnsafePickleException>(e);
        }
    }

    [Fact]
    public void ACheckpointWithBytesChangedInPlaceIsRefusedAsCorrupt()
    {
        string path = Path.Combine(dir, "model.pth");
        var weights = Scalars.Arange(100_000, dtype: ScalarType.Float32);
        TorchCheckpointFile.Save(path, new Dictionary<string, object?> { ["w"] = weights });
        var good = File.ReadAllBytes(path);
        // same size, 4 bytes overwritten in the middle (inside the tensor's data): the zip structure is intact
        var bad = (byte[])good.Clone();
        for (int i = 0; i < 4; i++) bad[bad.Length / 2 + i] ^= 0x5A;
        File.WriteAllBytes(path, bad);
        var e = Assert.ThrowsAny<CheckpointFormatException>(() => TorchCheckpointFile.Load(path));
        Assert.StartsWith(path + ": the file is corrupt", e.Message);
        Assert.Contains("re-download it or restore it", e.Message);
        Assert.DoesNotContain('\n', e.Message);

        // torch.save with compute_crc32 off writes 0 for every checksum: nothing to verify, so it loads
        File.WriteAllBytes(path, WithoutChecksums(good));
        var loaded = Assert.IsType<OrderedDictionary<string, object?>>(TorchCheckpointFile.Load(path));
        Assert.Equal(99_999f, Assert.IsType<Tensor>(loaded["w"])[-1].item<float>());
    }

    /// <summary>The zip with every CRC-32 field (local headers and central directory) set to 0.</summary>
    static byte[] WithoutChecksums(byte[] zip)
    {
        var bytes = (byte[])zip.Clone();
        int U16(int at) => BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(at));
        int I32(int at) => BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(at));
        int end = bytes.Length - 22, at = 0;
        for (; I32(at) == 0x04034b50; at += 30 + U16(at + 26) + U16(at + 28) + I32(at + 18)) // local headers
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(at + 14), 0);
        for (at = I32(end + 16); at < end; at += 46 + U16(at + 28)) // central directory
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(at + 16), 0);
        return bytes;
    }

    [Fact]
    public void SavingRemovesTheTemporaryFilesThatKilledSavesOfTheSameFileLeft()
    {
        string path = Path.Combine(dir, "model.pth");
        const int gone = 4194304; // above Linux's largest pid_max: never a running process
        var longAgo = DateTime.UtcNow - TimeSpan.FromDays(1);
        string Leftover(string name, DateTime written)
        {
            var file = Path.Combine(dir, name);
            File.WriteAllText(file, "half a checkpoint");
            File.SetLastWriteTimeUtc(file, written);
            return file;
        }
        var stale = new[]
        {
            Leftover($"model.pth.tmp-{gone}-{Guid.NewGuid():N}", longAgo),
            Leftover($"model.pth.tmp-{Guid.NewGuid():N}", longAgo), // named as before the writer's pid was in it
        };
        var kept = new[]
        {
            Leftover($"model.pth.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}", longAgo), // its writer is running
            Leftover($"model.pth.tmp-{gone}-{Guid.NewGuid():N}", DateTime.UtcNow), // written since this process started
            Leftover($"other.pth.tmp-{gone}-{Guid.NewGuid():N}", longAgo), // another file's
            Leftover("model.pth.tmp-notes.txt", longAgo), // not a temporary file's name
        };
        TorchCheckpointFile.Save(path, new Dictionary<string, object?> { ["w"] = Scalars.Arange(10) });
        Assert.Equal(kept.Append(path).Order(), Directory.GetFiles(dir).Order());
        Assert.All(stale, f => Assert.False(File.Exists(f), f));
    }

    // Hand-made data.pkl (protocol 2, SHORT_BINUNICODE strings): a float tensor of SIZE elements on storage KEY,
    // which the zip below declares with 4 elements.
    const string TensorPickle =
        "\u0080\u0002ctorch._utils\n_rebuild_tensor_v2\n((\u008c\u0007storagectorch\nFloatStorage\n" +
        "\u008c\u0001KEY\u008c\u0003cpuK\u0004tQK\u0000KSIZE\u0085K\u0001\u0085\u0089ccollections\n" +
        "OrderedDict\n)RtR.";

    [Theory]
    [InlineData("0", 4, null)] // the control: loads
    [InlineData("0", 100, "reaches past the end of storage 0")]
    [InlineData("1", 4, "storage 1 is missing")]
    public void ChecksTensorViewsAgainstTheirStorage(string key, int size, string? error)
    {
        string path = CraftedZip(TensorPickle.Replace("KEY", key).Replace("SIZE", ((char)size).ToString()));
        if (error is null)
            Assert.Equal(new float[] { 1, 2, 3, 4 },
                Assert.IsType<Tensor>(TorchCheckpointFile.Load(path)).data<float>().ToArray());
        else
            Assert.Contains(error,
                Assert.Throws<CheckpointFormatException>(() => TorchCheckpointFile.Load(path)).Message);
    }

    [Theory]
    [InlineData("\u0080\u0002I01\n.", "unsupported pickle opcode 0x49")]                 // protocol 0 INT
    [InlineData("\u0080\u0002\u008c\u0003fooQ.", "unsupported persistent id")]             // BINPERSID of a non-storage
    [InlineData("\u0080\u0002ccollections\nOrderedDict\n\u008c\u0001x\u0085R.",
        "unexpected call collections.OrderedDict")]
    [InlineData("\u0080\u0002]a.", "pickle stack underflow")]
    public void RejectsMalformedPickles(string pickle, string error)
    {
        string path = CraftedZip(pickle);
        var e = Assert.Throws<CheckpointFormatException>(() => TorchCheckpointFile.Load(path));
        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains(error, e.Message);
    }

    string CraftedZip(string pickle)
    {
        string path = Path.Combine(dir, $"crafted-{Guid.NewGuid():N}.pth");
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        void Add(string name, byte[] data)
        {
            using var s = zip.CreateEntry(name, CompressionLevel.NoCompression).Open();
            s.Write(data);
        }
        Add("archive/data.pkl", Encoding.Latin1.GetBytes(pickle));
        Add("archive/data/0", [.. new float[] { 1, 2, 3, 4 }.SelectMany(BitConverter.GetBytes)]);
        Add("archive/version", "3\n"u8.ToArray());
        return path;
    }

    [Fact]
    public void LoadsSafeTensorsWrittenByPython()
    {
        var tensors = SafeTensorsFile.Load(Fixture("tensors.safetensors"), out var metadata);
        var expected = Expected("tensors.safetensors");
        Assert.Equal("pt", metadata["format"]);
        Assert.Equal(expected.GetProperty("metadata").EnumerateObject().Count(), metadata.Count);
        var asTree = new OrderedDictionary<string, object?>();
        foreach (var (k, v) in tensors) asTree[k] = v;
        AssertMatches(expected.GetProperty("tensors"), asTree, "safetensors");
    }

    [Fact]
    public void RoundTripsSafeTensors()
    {
        var tensors = new Dictionary<string, Tensor>
        {
            ["w"] = torch.randn(3, 5),
            ["t"] = Scalars.Arange(12, dtype: ScalarType.Int32).reshape(3, 4).t(), // non-contiguous in, contiguous out
            ["h"] = torch.tensor(new float[] { 1.5f, -2 }).to_type(ScalarType.BFloat16),
            ["m"] = torch.tensor(new[] { true, false }),
            ["s"] = torch.tensor(4.0),
            ["e"] = torch.zeros(0, 7),
        };
        string path = Path.Combine(dir, "x.safetensors");
        SafeTensorsFile.Save(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });
        var loaded = SafeTensorsFile.Load(path, out var metadata);
        Assert.Equal("pt", metadata["format"]);
        Assert.Equal(tensors.Keys, loaded.Keys);
        foreach (var (k, t) in tensors) AssertTreeEqual(t, loaded[k], k);
        Assert.Equal(0,
            (File.ReadAllBytes(path).Length - tensors.Values.Sum(t => t.numel() * t.element_size()) - 8) % 8);
    }

    [Theory]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,80]}}""", "out of range")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,0]}}""", "out of range")]
    [InlineData("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", "needs 12")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}""", "overlap")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", "cover 4 bytes of a 8-byte")]
    [InlineData("""{"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}""", "unsupported dtype")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2]}}""", "invalid safetensors")]
    [InlineData("""[1, 2""", "invalid safetensors")]
    public void BadSafeTensorsHeadersAreRejected(string header, string message)
    {
        string path = Path.Combine(dir, "bad.safetensors");
        var json = Encoding.UTF8.GetBytes(header);
        File.WriteAllBytes(path, [.. BitConverter.GetBytes((ulong)json.Length), .. json, .. new byte[8]]);
        var e = Assert.Throws<CheckpointFormatException>(() => SafeTensorsFile.Load(path));
        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains(message, e.Message);

        File.WriteAllBytes(path, [.. BitConverter.GetBytes(1UL << 40), .. json]); // header longer than the file
        Assert.Contains("larger than the file",
            Assert.Throws<CheckpointFormatException>(() => SafeTensorsFile.Load(path)).Message);
    }

    static OrderedDictionary<string, object?> RichTree()
    {
        var shared = Scalars.Arange(6, dtype: ScalarType.Float32);
        var many = new List<object?>();
        for (int i = 0; i < 300; i++)
        {
            using var value = i.ToScalar();
            many.Add(torch.full(new long[] { 2 }, value, dtype: ScalarType.Int16));
        }
        var bigDict = new Dictionary<object, object?>();
        for (int i = 0; i < 2500; i++) bigDict[i] = $"v{i}";
        object? nested = "bottom";
        for (int i = 0; i < 60; i++) nested = new List<object?> { nested };
        return new()
        {
            ["state_dict"] = new OrderedDictionary<string, object?>
            {
                ["f32"] = torch.randn(3, 4),
                ["f64"] = torch.tensor(new[] { Math.PI, double.NaN, double.NegativeInfinity }),
                ["f16"] = torch.tensor(new[] { 0.5f, -65504f }).to_type(ScalarType.Float16),
                ["bf16"] = torch.tensor(new[] { 1e30f, -3.5f }).to_type(ScalarType.BFloat16),
                ["i64"] = torch.tensor(new[] { long.MinValue, long.MaxValue, 0 }),
                ["i32"] = torch.tensor(new[] { int.MinValue, 7 }),
                ["i16"] = torch.tensor(new short[] { -3, 300 }),
                ["i8"] = torch.tensor(new sbyte[] { -128, 127 }),
                ["u8"] = torch.tensor(new byte[] { 0, 255 }),
                ["bool"] = torch.tensor(new[] { true, false, true }),
                ["scalar"] = torch.tensor(3.5f),
                ["empty"] = torch.zeros(0, 2),
                ["transposed"] = Scalars.Arange(12).reshape(3, 4).t(),
                ["slice"] = shared.narrow(0, 2, 3),
            },
            ["optimizer"] = new OrderedDictionary<object, object?>
            {
                [0L] = new Dictionary<string, object?> { ["momentum_buffer"] = torch.ones(2) },
                [5] = "int key",
                [(object?[])[1L, "tuple key"]] = null,
            },
            ["list"] = new List<object?> { 1, 2.5, -0.0, "x", null, true, false, new byte[] { 0, 128, 255 },
                                           Array.Empty<byte>(), (object?[])[1, "a"], Array.Empty<object?>(),
                                           (object?[])[1, 2, 3, 4, 5], new List<object?>() },
            ["ints"] = new List<object?> { 0, 255, 256, 65535, 65536, -1, int.MinValue, int.MaxValue + 1L,
                                           long.MaxValue, long.MinValue, BigInteger.Pow(2, 70), -BigInteger.Pow(2, 70),
                                           ulong.MaxValue, (byte)7, (short)-2 },
            ["floats"] = new List<object?> { 0.1, 1e-310, double.MaxValue, double.NaN, double.PositiveInfinity, 1.5f },
            ["text"] = "héllo ✓ \u0000 \n end",
            ["set"] = new HashSet<object?> { 1L, 2L, "three" },
            ["dtype"] = ScalarType.BFloat16,
            ["same1"] = shared,
            ["same2"] = shared,
            ["many"] = many,
            ["late"] = many[299],
            ["big_dict"] = bigDict,
            ["big_list"] = Enumerable.Range(0, 2500).Select(i => (object?)(long)i).ToList(),
            ["nested"] = nested,
            ["empty_dict"] = new Dictionary<string, object?>(),
        };
    }

    /// <summary>Compares a loaded tree with the tagged JSON written by make_checkpoint_fixtures.py.</summary>
    static void AssertMatches(JsonElement expected, object? actual, string at)
    {
        var items = expected.TryGetProperty("items", out var i) ? i.EnumerateArray().ToList() : [];
        switch (expected.GetProperty("t").GetString())
        {
            case "none": Assert.Null(actual); break;
            case "bool": Assert.Equal(expected.GetProperty("v").GetBoolean(), Assert.IsType<bool>(actual)); break;
            case "int":
                Assert.Equal(BigInteger.Parse(expected.GetProperty("v").GetString()!), AsBig(actual, at)); break;
            case "float": AssertDouble(expected.GetProperty("v"), Assert.IsType<double>(actual), at); break;
            case "str": Assert.Equal(expected.GetProperty("v").GetString(), Assert.IsType<string>(actual)); break;
            case "bytes":
                Assert.Equal(Convert.FromHexString(expected.GetProperty("hex").GetString()!),
                    Assert.IsType<byte[]>(actual));
                break;
            case "list": AssertItems(items, Assert.IsType<List<object?>>(actual), at); break;
            case "tuple": AssertItems(items, Assert.IsType<object?[]>(actual), at); break;
            case "set":
                Assert.Equal(items.Select(x => BigInteger.Parse(x.GetProperty("v").GetString()!)).Order(),
                             Assert.IsType<HashSet<object?>>(actual).Select(x => AsBig(x, at)).Order());
                break;
            case "dict":
                bool stringKeys = items.All(p => p[0].GetProperty("t").GetString() == "str");
                var dict = Assert.IsAssignableFrom<IDictionary>(actual);
                Assert.IsType(stringKeys ? typeof(OrderedDictionary<string, object?>)
                    : typeof(OrderedDictionary<object, object?>), actual);
                var entries = Entries(dict);
                Assert.Equal(items.Count, entries.Count);
                for (int k = 0; k < items.Count; k++)
                {
                    AssertMatches(items[k][0], entries[k].Key, $"{at} key {k}");
                    AssertMatches(items[k][1], entries[k].Value, $"{at}[{entries[k].Key}]");
                }
                break;
            case "tensor":
                var t = Assert.IsType<Tensor>(actual);
                Assert.True(t.is_contiguous(), at);
                Assert.Equal(expected.GetProperty("dtype").GetString(), DTypeName(t.dtype));
                Assert.Equal(expected.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()), t.shape);
                var values = expected.GetProperty("values").EnumerateArray().ToList();
                Assert.Equal(values.Count, t.numel());
                if (values.Count == 0) break; // TensorAccessor.ToArray throws on empty tensors
                if (t.is_floating_point())
                {
                    var doubles = t.to_type(ScalarType.Float64).data<double>().ToArray();
                    for (int k = 0; k < values.Count; k++) AssertDouble(values[k], doubles[k], $"{at}[{k}]");
                }
                else if (t.dtype == ScalarType.Bool)
                    Assert.Equal(values.Select(x => x.GetBoolean()), t.data<bool>().ToArray());
                else
                    Assert.Equal(values.Select(x => x.GetInt64()), t.to_type(ScalarType.Int64).data<long>().ToArray());
                break;
            default: Assert.Fail($"{at}: unknown tag {expected}"); break;
        }
    }

    // Not dict.Cast<DictionaryEntry>(): the non-generic IEnumerable of OrderedDictionary<,> yields KeyValuePairs.
    static List<DictionaryEntry> Entries(IDictionary dict)
    {
        var entries = new List<DictionaryEntry>();
        foreach (DictionaryEntry e in dict) entries.Add(e);
        return entries;
    }

    static void AssertItems(List<JsonElement> expected, IList actual, string at)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int k = 0; k < expected.Count; k++) AssertMatches(expected[k], actual[k], $"{at}[{k}]");
    }

    static void AssertDouble(JsonElement expected, double actual, string at)
    {
        double want = expected.ValueKind == JsonValueKind.String
            ? expected.GetString() switch { "nan" => double.NaN, "inf" => double.PositiveInfinity,
                _ => double.NegativeInfinity }
            : expected.GetDouble();
        Assert.True(want.Equals(actual) && (want != 0 || double.IsNegative(want) == double.IsNegative(actual)),
            $"{at}: expected {want}, got {actual}");
    }

    static BigInteger AsBig(object? v, string at) => v switch
    {
        BigInteger b => b,
        ulong u => u,
        sbyte or byte or short or ushort or int or uint or long => Convert.ToInt64(v),
        _ => throw new Xunit.Sdk.XunitException($"{at}: expected an int, got {v?.GetType().Name ?? "null"}"),
    };

    static string DTypeName(ScalarType s) => s switch
    {
        ScalarType.Float32 => "float32", ScalarType.Float64 => "float64", ScalarType.Float16 => "float16",
        ScalarType.BFloat16 => "bfloat16", ScalarType.Int64 => "int64", ScalarType.Int32 => "int32",
        ScalarType.Int16 => "int16", ScalarType.Int8 => "int8", ScalarType.Byte => "uint8", ScalarType.Bool => "bool",
        _ => s.ToString(),
    };

    /// <summary>Deep equality of a saved tree and its reloaded copy: ints compare by value,
    /// tensors bit for bit.</summary>
    static void AssertTreeEqual(object? expected, object? actual, string at)
    {
        switch (expected)
        {
            case null: Assert.Null(actual); break;
            case float or double:
                double e = Convert.ToDouble(expected), a = Assert.IsType<double>(actual);
                Assert.True(BitConverter.DoubleToInt64Bits(e) == BitConverter.DoubleToInt64Bits(a),
                    $"{at}: {e} != {a}");
                break;
            case sbyte or byte or short or ushort or int or uint or long or ulong or BigInteger:
                Assert.Equal(AsBig(expected, at), AsBig(actual, at)); break;
            case string or bool or ScalarType: Assert.Equal(expected, actual); break;
            case byte[] bytes: Assert.Equal(bytes, Assert.IsType<byte[]>(actual)); break;
            case Tensor t:
                var u = Assert.IsType<Tensor>(actual);
                Assert.Equal(t.dtype, u.dtype);
                Assert.Equal(t.shape, u.shape);
                Assert.True(t.contiguous().bytes.SequenceEqual(u.bytes), $"{at}: tensor values differ");
                break;
            case HashSet<object?> set: Assert.True(set.SetEquals(Assert.IsType<HashSet<object?>>(actual)), at); break;
            case IDictionary dict:
                var want = Entries(dict);
                var got = Entries(Assert.IsAssignableFrom<IDictionary>(actual));
                Assert.Equal(want.Count, got.Count);
                for (int k = 0; k < want.Count; k++)
                {
                    AssertTreeEqual(want[k].Key, got[k].Key, $"{at} key {k}");
                    AssertTreeEqual(want[k].Value, got[k].Value, $"{at}[{want[k].Key}]");
                }
                break;
            case object?[] tuple:
                var tupleBack = Assert.IsType<object?[]>(actual);
                Assert.Equal(tuple.Length, tupleBack.Length);
                for (int k = 0; k < tuple.Length; k++) AssertTreeEqual(tuple[k], tupleBack[k], $"{at}[{k}]");
                break;
            case IList list:
                var listBack = Assert.IsType<List<object?>>(actual);
                Assert.Equal(list.Count, listBack.Count);
                for (int k = 0; k < list.Count; k++) AssertTreeEqual(list[k], listBack[k], $"{at}[{k}]");
                break;
            default: Assert.Fail($"{at}: unexpected {expected.GetType()}"); break;
        }
    }
}
