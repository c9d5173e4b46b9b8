using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace RetinaNet.Checkpoints;

// The unpickler builds these placeholders; TorchCheckpointFile turns them into dictionaries and tensors afterwards
// (in the legacy format the storage bytes only come after the pickle).
internal sealed class RawDict { public readonly List<KeyValuePair<object?, object?>> Items = []; }
internal sealed class PickleGlobal(string name) { public readonly string Name = name; }
internal sealed class StorageRef(string key, DType dtype, long numel)
{
    public readonly string Key = key; public readonly DType DType = dtype; public readonly long Numel = numel;
}
internal sealed class TensorRef(StorageRef storage, long offset, long[] size, long[] stride)
{
    public readonly StorageRef Storage = storage; public readonly long Offset = offset;
    public readonly long[] Size = size, Stride = stride;
}

/// <summary> A strict unpickler for what torch.save writes (protocols 2 to 5). Globals are checked against an
/// allow-list when they are named, and only the few allowed ones are interpreted here: nothing from the file is ever
/// imported or called. </summary>
internal sealed class PickleReader(string path, Stream input, Dictionary<string, StorageRef> storages)
{
    static readonly HashSet<string> Callables =
    [
        "collections.OrderedDict", "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state", "torch.device", "torch.Size",
        "_codecs.encode", "builtins.bytes", "builtins.bytearray", "builtins.set", "builtins.frozenset",
    ];

    readonly List<object?> stack = [];
    readonly Stack<int> marks = new();
    readonly Dictionary<long, object?> memo = [];

    CheckpointFormatException Fail(string message) => new($"{path}: {message}");

    /// <summary>Reads one pickle, up to and including its STOP opcode.</summary>
    public object? Load()
    {
        while (true)
        {
            long at = input.Position;
            int op = input.ReadByte();
            switch (op)
            {
                case -1: throw Fail("truncated pickle (no STOP opcode)");
                case 0x80: ReadByte(); break;                       // PROTO
                case 0x95: Read(8); break;                          // FRAME: only a length hint
                case '.': return Pop();                             // STOP
                case '(': marks.Push(stack.Count); break;           // MARK
                case '0': Pop(); break;                             // POP
                case '1': PopMark(); break;                         // POP_MARK
                case '2': Push(Peek()); break;                      // DUP
                case 'N': Push(null); break;
                case 0x88: Push(true); break;
                case 0x89: Push(false); break;
                case 'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Read(4))); break;
                case 'K': Push((long)ReadByte()); break;
                case 'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Read(2))); break;
                case 0x8a: Push(Long(Read(ReadByte()))); break;     // LONG1
                case 0x8b: Push(Long(Read(ReadLength(4)))); break;  // LONG4
                case 'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Read(8))); break;
                case 'X': Push(Utf8(Read(ReadLength(4)))); break;   // BINUNICODE
                case 0x8c: Push(Utf8(Read(ReadByte()))); break;     // SHORT_BINUNICODE
                case 0x8d: Push(Utf8(Read(ReadLength(8)))); break;  // BINUNICODE8
                case 'U': Push(Utf8(Read(ReadByte()))); break;      // SHORT_BINSTRING: a Python 2 str, decoded as
                                                                    // torch.load does
                case 'T': Push(Utf8(Read(ReadLength(4)))); break;   // BINSTRING
                case 'C': Push(Read(ReadByte())); break;            // SHORT_BINBYTES
                case 'B': Push(Read(ReadLength(4))); break;         // BINBYTES
                case 0x8e: case 0x96: Push(Read(ReadLength(8))); break; // BINBYTES8, BYTEARRAY8
                case '}': Push(new RawDict()); break;
                case ']': Push(new List<object?>()); break;
                case ')': Push(Array.Empty<object?>()); break;
                case 0x8f: Push(new HashSet<object?>()); break;     // EMPTY_SET
                case 't': Push(PopMark().ToArray()); break;
                case 0x85: Push(new[] { Pop() }); break;
                case 0x86: { var b = Pop(); var a = Pop(); Push(new[] { a, b }); break; }
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new[] { a, b, c }); break; }
                case 'a': { var v = Pop(); AsList(Peek()).Add(v); break; }
                case 'e': { var items = PopMark(); AsList(Peek()).AddRange(items); break; }
                case 's': { var v = Pop(); var k = Pop(); AsDict(Peek()).Items.Add(new(k, v)); break; }
                case 'u':
                    {
                        var items = PopMark();
                        if (items.Count % 2 != 0) throw Fail("SETITEMS with an odd number of items");
                        var d = AsDict(Peek());
                        for (int i = 0; i < items.Count; i += 2) d.Items.Add(new(items[i], items[i + 1]));
                        break;
                    }
                case 0x90: { var items = PopMark(); AsSet(Peek()).UnionWith(items); break; } // ADDITEMS
                case 0x91: Push(new HashSet<object?>(PopMark())); break;                      // FROZENSET
                case 'q': memo[ReadByte()] = Peek(); break;                                   // BINPUT
                case 'r': memo[BinaryPrimitives.ReadUInt32LittleEndian(Read(4))] = Peek(); break;
                case 0x94: memo[memo.Count] = Peek(); break;                                  // MEMOIZE
                case 'h': Push(Memo(ReadByte())); break;                                      // BINGET
                case 'j': Push(Memo(BinaryPrimitives.ReadUInt32LittleEndian(Read(4)))); break;
                case 'c': { var module = ReadLine(); Push(Global(module, ReadLine())); break; }
                case 0x93:                                                                    // STACK_GLOBAL
                    {
                        var name = Pop(); var module = Pop();
                        if (module is not string m || name is not string n)
                            throw Fail("STACK_GLOBAL without two strings");
                        Push(Global(m, n));
                        break;
                    }
                case 'R': case 0x81: { var args = Pop(); Push(Call(Pop(), args)); break; }  // REDUCE, NEWOBJ
                case 'Q': Push(PersistentLoad(Pop())); break;                                 // BINPERSID
                case 'b':                                                                     // BUILD
                    // OrderedDict state (a state_dict's _metadata) and Parameter state carry no weights: dropped.
                    Pop();
                    if (Peek() is not (RawDict or TensorRef)) throw Fail($"BUILD on a {Describe(Peek())}");
                    break;
                default: throw Fail($"unsupported pickle opcode 0x{op:x2} at byte {at}");
            }
        }
    }

    object Global(string module, string name)
    {
        if (module is "__builtin__") module = "builtins"; // protocol 2 writes Python 2 module names
        string full = $"{module}.{name}";
        if (module == "torch" && DType.All.FirstOrDefault(d => d.Torch == name) is { } dtype) return dtype.Scalar;
        if (!Callables.Contains(full) && DType.ByStorageGlobal(full) is null)
            throw new UnsafePickleException(
                $"{path}: refusing to load: the pickle calls {full}, which is not on the allow-list " +
                "(only tensors and plain containers are loaded)");
        return new PickleGlobal(full);
    }

    object Call(object? callable, object? args)
    {
        if (callable is not PickleGlobal g) throw Fail($"call of a {Describe(callable)}");
        if (args is not object?[] a)
            throw Fail($"{g.Name} called with a {Describe(args)} instead of an argument tuple");
        return (g.Name, a) switch
        {
            ("collections.OrderedDict", []) => new RawDict(),
            ("torch._utils._rebuild_tensor_v2", { Length: 6 or 7 })
                or ("torch._utils._rebuild_tensor", { Length: 4 }) =>
                new TensorRef(a[0] as StorageRef ?? throw Fail("tensor without a storage"), AsLong(a[1]),
                    Longs(a[2]), Longs(a[3])),
            ("torch._utils._rebuild_parameter", { Length: 3 })
                or ("torch._utils._rebuild_parameter_with_state", { Length: 4 }) =>
                a[0] as TensorRef ?? throw Fail("parameter without a tensor"),
            ("torch.device", [string type]) => type,
            ("torch.device", [string type, long index]) => $"{type}:{index}",
            ("torch.Size", []) => Array.Empty<object?>(),
            ("torch.Size", [object?[] dims]) => dims,
            ("_codecs.encode", [string text, "latin1" or "latin-1"]) =>
                Encoding.Latin1.GetBytes(text), // how protocol 2 stores bytes
            ("builtins.bytes" or "builtins.bytearray", []) => Array.Empty<byte>(),
            ("builtins.set" or "builtins.frozenset", []) => new HashSet<object?>(),
            ("builtins.set" or "builtins.frozenset", [List<object?> items]) => new HashSet<object?>(items),
            _ => throw Fail($"unexpected call {g.Name} with {a.Length} argument(s)"),
        };
    }

    /// <summary>torch.save's persistent ids: ('storage', storage type, key, location, numel[, legacy view
    /// metadata]).</summary>
    StorageRef PersistentLoad(object? pid)
    {
        if (pid is not object?[] { Length: 5 or 6 } p || p[0] is not "storage" || p[1] is not PickleGlobal type
            || p[2] is not string key || p[4] is not long numel || numel < 0 || (p.Length == 6 && p[5] is not null))
            throw Fail("unsupported persistent id (only torch storages are loaded)");
        var dtype = DType.ByStorageGlobal(type.Name) ?? throw Fail($"{type.Name} is not a storage type");
        if (storages.TryGetValue(key, out var known))
            return known.DType == dtype && known.Numel == numel ? known
                : throw Fail($"storage {key} is declared twice, differently");
        return storages[key] = new StorageRef(key, dtype, numel);
    }

    void Push(object? v) => stack.Add(v);
    object? Peek() => stack.Count > (marks.Count > 0 ? marks.Peek() : 0) ? stack[^1]
        : throw Fail("pickle stack underflow");
    object? Pop() { var v = Peek(); stack.RemoveAt(stack.Count - 1); return v; }

    List<object?> PopMark()
    {
        if (marks.Count == 0) throw Fail("pickle opcode needs a MARK that is missing");
        int start = marks.Pop();
        var items = stack.GetRange(start, stack.Count - start);
        stack.RemoveRange(start, stack.Count - start);
        return items;
    }

    object? Memo(long key) => memo.TryGetValue(key, out var v) ? v : throw Fail($"pickle memo entry {key} is missing");
    List<object?> AsList(object? v) => v as List<object?> ?? throw Fail($"append to a {Describe(v)}");
    RawDict AsDict(object? v) => v as RawDict ?? throw Fail($"setitem on a {Describe(v)}");
    HashSet<object?> AsSet(object? v) => v as HashSet<object?> ?? throw Fail($"additems on a {Describe(v)}");
    long AsLong(object? v) => v as long? ?? throw Fail($"expected an int, found a {Describe(v)}");
    long[] Longs(object? v) => v is object?[] t ? Array.ConvertAll(t, AsLong)
        : throw Fail($"expected a tuple of ints, found a {Describe(v)}");
    static string Describe(object? v) => v switch { null => "None", PickleGlobal g => g.Name, _ => v.GetType().Name };

    int ReadByte() => input.ReadByte() is var b and >= 0 ? b : throw Fail("truncated pickle");

    int ReadLength(int width)
    {
        var bytes = Read(width);
        long n = width == 4 ? BinaryPrimitives.ReadInt32LittleEndian(bytes)
            : BinaryPrimitives.ReadInt64LittleEndian(bytes);
        return n >= 0 && n <= Array.MaxLength ? (int)n : throw Fail($"bad length {n} in pickle");
    }

    byte[] Read(int n)
    {
        // Bound lengths by what is left, so a forged length cannot make us allocate gigabytes.
        if (n > input.Length - input.Position) throw Fail("truncated pickle");
        var buffer = new byte[n];
        input.ReadExactly(buffer);
        return buffer;
    }

    string ReadLine()
    {
        var line = new List<byte>();
        for (int b; (b = ReadByte()) != '\n';)
            line.Add(line.Count < 256 ? (byte)b : throw Fail("GLOBAL name too long"));
        return Utf8([.. line]);
    }

    static string Utf8(byte[] bytes) => Encoding.UTF8.GetString(bytes);

    /// <summary>Pickle's little-endian two's-complement ints; a long when it fits, else a BigInteger.</summary>
    static object Long(byte[] bytes)
    {
        var value = new BigInteger(bytes, isUnsigned: false, isBigEndian: false);
        return value >= long.MinValue && value <= long.MaxValue ? (long)value : value;
    }
}
