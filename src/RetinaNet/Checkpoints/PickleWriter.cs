using System.Buffers.Binary;
using System.Collections;
using System.Numerics;
using System.Text;
using TorchSharp;
using Tensor = TorchSharp.torch.Tensor;

namespace RetinaNet.Checkpoints;

/// <summary>
/// Pickles an object tree with protocol 2, the way torch.save does: tensors become
/// torch._utils._rebuild_tensor_v2 calls on persistent storages, listed in <see cref="Storages"/> for the zip writer.
/// </summary>
internal sealed class PickleWriter
{
    const int MaxDepth = 500; // deeper trees are certainly a mistake, and recursion must not overflow the stack

    readonly MemoryStream o = new();
    readonly Dictionary<object, int> memo = new(ReferenceEqualityComparer.Instance); // tensors and globals written once
    // containers being written (cycles)
    readonly HashSet<object> open = new(ReferenceEqualityComparer.Instance);
    int memoCount;

    /// <summary>Storage key and tensor, in the order of first use.</summary>
    public readonly List<(string Key, Tensor Tensor)> Storages = [];

    public byte[] Write(object? root)
    {
        o.Write([0x80, 2]); // PROTO 2
        Value(root, "root", 0);
        o.WriteByte((byte)'.');
        return o.ToArray();
    }

    void Value(object? v, string at, int depth)
    {
        if (depth > MaxDepth) throw new ArgumentException($"cannot save: the tree is nested deeper than {MaxDepth} at "
            + $"{at}");
        switch (v)
        {
            case null: Op('N'); break;
            case bool b: Op(b ? 0x88 : 0x89); break;
            case string s: Str(s); break;
            case byte[] bytes: // protocol 2 has no bytes opcode: Python writes _codecs.encode(latin-1 text, 'latin1')
                Global("_codecs", "encode"); Str(Encoding.Latin1.GetString(bytes)); Str("latin1"); Op(0x86); Op('R');
                break;
            case sbyte or byte or short or ushort or int or uint or long: Int(Convert.ToInt64(v)); break;
            case ulong u: Int(u); break;
            case BigInteger big: Int(big); break;
            case float or double:
                Op('G');
                Span<byte> d = stackalloc byte[8];
                BinaryPrimitives.WriteDoubleBigEndian(d, Convert.ToDouble(v));
                o.Write(d);
                break;
            case torch.ScalarType st:
                Global("torch", DType.ByScalar(st)?.Torch
                    ?? throw new ArgumentException($"cannot save dtype {st} at {at}"));
                break;
            case Tensor t: TensorValue(t, at); break;
            case IDictionary dict:
                Container(v, at, () =>
                {
                    Op('}');
                    int n = 0;
                    foreach (DictionaryEntry e in dict)
                    {
                        if (n++ % 1000 == 0) { if (n > 1) Op('u'); Op('('); } // SETITEMS in batches, as Python does
                        Value(e.Key, $"{at} key", depth + 1);
                        Value(e.Value, $"{at}[{Show(e.Key)}]", depth + 1);
                    }
                    if (n > 0) Op('u');
                });
                break;
            case object?[] tuple when v.GetType() == typeof(object[]):
                Container(v, at, () =>
                {
                    if (tuple.Length is > 0 and <= 3) { Items(tuple, at, depth); Op(0x84 + tuple.Length); } // TUPLE1..3
                    else { Op('('); Items(tuple, at, depth); Op('t'); }
                });
                break;
            case HashSet<object?> set:
                Container(v, at, () => { Global("__builtin__", "set"); Op(']'); Op('('); Items(set, at, depth); Op('e');
                    Op(0x85); Op('R'); });
                break;
            case IList list: // List<T> and arrays other than object?[]
                Container(v, at, () => { Op(']'); Op('('); Items(list, at, depth); Op('e'); });
                break;
            default:
                throw new ArgumentException($"cannot save a {v.GetType()} at {at}: only dictionaries, lists, tuples "
                    + "(object?[]), " +
                    "strings, numbers, bools, null, byte[], sets and tensors can be saved");
        }
    }

    void Items(IEnumerable items, string at, int depth)
    {
        int i = 0;
        foreach (var item in items) Value(item, $"{at}[{i++}]", depth + 1);
    }

    void Container(object v, string at, Action write)
    {
        if (!open.Add(v)) throw new ArgumentException($"cannot save: {at} contains itself");
        write();
        open.Remove(v);
    }

    void TensorValue(Tensor t, string at)
    {
        if (memo.TryGetValue(t, out int id)) { Get(id); return; } // the same tensor twice stays one tensor in Python
        var dtype = DType.ByScalar(t.dtype) ?? throw new ArgumentException($"cannot save a {t.dtype} tensor at {at}");
        string key = Storages.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
        long[] shape = t.shape, stride = new long[shape.Length];
        for (long i = shape.Length - 1, s = 1; i >= 0; s *= shape[i], i--) stride[i] = s; // data is written contiguous
        Global("torch._utils", "_rebuild_tensor_v2");
        Op('(');
        Op('('); Str("storage"); Global("torch", dtype.Storage); Str(key); Str("cpu"); Int(t.numel()); Op('t'); Op('Q');
        Int(0); Ints(shape); Ints(stride); Op(0x89); // offset, size, stride, requires_grad=False
        Global("collections", "OrderedDict"); Op(')'); Op('R'); // backward_hooks
        Op('t'); Op('R');
        Put(t);
        Storages.Add((key, t));
    }

    void Ints(long[] values)
    {
        if (values.Length == 0) { Op(')'); return; }
        Op('(');
        foreach (var v in values) Int(v);
        Op('t');
    }

    void Int(BigInteger v)
    {
        if (v >= 0 && v <= 0xff) { Op('K'); o.WriteByte((byte)v); }
        else if (v >= 0 && v <= 0xffff) { Op('M'); o.Write(BitConverter.GetBytes((ushort)v)); }
        else if (v >= int.MinValue && v <= int.MaxValue) { Op('J'); o.Write(BitConverter.GetBytes((int)v)); }
        else { var bytes = v.ToByteArray(); Op(0x8a); o.WriteByte((byte)bytes.Length); o.Write(bytes); } // LONG1
    }

    void Str(string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        Op('X');
        o.Write(BitConverter.GetBytes(bytes.Length));
        o.Write(bytes);
    }

    void Global(string module, string name)
    {
        string full = module + "\n" + name + "\n";
        var key = string.Intern(full); // memo keys compare by reference
        if (memo.TryGetValue(key, out int id)) { Get(id); return; }
        Op('c');
        o.Write(Encoding.ASCII.GetBytes(full));
        Put(key);
    }

    void Put(object v)
    {
        int id = memoCount++;
        memo[v] = id;
        if (id < 256) { Op('q'); o.WriteByte((byte)id); } else { Op('r'); o.Write(BitConverter.GetBytes(id)); }
    }

    void Get(int id)
    {
        if (id < 256) { Op('h'); o.WriteByte((byte)id); } else { Op('j'); o.Write(BitConverter.GetBytes(id)); }
    }

    void Op(int code) => o.WriteByte((byte)code);
    static string Show(object? key) => key is string s ? $"'{s}'" : $"{key}";
}
