using Google.Protobuf;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;
using DataType = Onnx.TensorProto.Types.DataType;

namespace RetinaNet.Export;

/// <summary>ONNX tensors from TorchSharp tensors and arrays (little-endian raw data, as ONNX stores it), and
/// back.</summary>
public static class OnnxTensors
{
    public static DataType TypeOf(ScalarType type) => type switch
    {
        ScalarType.Float32 => DataType.Float,
        ScalarType.Float16 => DataType.Float16,
        ScalarType.Int64 => DataType.Int64,
        ScalarType.Int32 => DataType.Int32,
        ScalarType.Byte => DataType.Uint8,
        ScalarType.Int8 => DataType.Int8,
        ScalarType.Bool => DataType.Bool,
        _ => throw new ArgumentException($"no ONNX tensor type for {type}"),
    };

    public static ScalarType ScalarTypeOf(DataType type) => type switch
    {
        DataType.Float => ScalarType.Float32,
        DataType.Float16 => ScalarType.Float16,
        DataType.Int64 => ScalarType.Int64,
        DataType.Int32 => ScalarType.Int32,
        DataType.Uint8 => ScalarType.Byte,
        DataType.Int8 => ScalarType.Int8,
        DataType.Bool => ScalarType.Bool,
        _ => throw new ArgumentException($"no torch type for ONNX {type}"),
    };

    /// <summary>The tensor's values, converted to <paramref name="type"/> (default: its own), with its
    /// shape.</summary>
    public static TensorProto From(Tensor value, DataType? type = null)
    {
        using var scope = NewDisposeScope();
        var target = type is DataType t ? ScalarTypeOf(t) : value.dtype;
        var host = value.detach().to(target).cpu().contiguous();
        var proto = new TensorProto { DataType = (int)TypeOf(target), RawData = ByteString.CopyFrom(host.bytes) };
        proto.Dims.AddRange(value.shape);
        return proto;
    }

    /// <summary>Values with the given shape (none: one dimension of their length).</summary>
    public static TensorProto From(float[] values, params long[] dims)
    {
        using var t = tensor(values, dims.Length == 0 ? [values.Length] : dims);
        return From(t);
    }

    /// <inheritdoc cref="From(float[], long[])"/>
    public static TensorProto From(long[] values, params long[] dims)
    {
        using var t = tensor(values, dims.Length == 0 ? [values.Length] : dims);
        return From(t);
    }

    /// <summary>A scalar (rank 0) tensor.</summary>
    public static TensorProto Scalar(float value, DataType type = DataType.Float)
    {
        using var t = tensor(value);
        return From(t, type);
    }

    /// <summary>The values of an initializer as a TorchSharp tensor (CPU), from raw data or the typed
    /// fields.</summary>
    public static Tensor ToTensor(TensorProto proto)
    {
        var type = ScalarTypeOf((DataType)proto.DataType);
        var dims = proto.Dims.ToArray();
        if (!proto.RawData.IsEmpty)
        {
            var result = empty(dims, type);
            proto.RawData.Span.CopyTo(result.bytes);
            return result;
        }
        return (DataType)proto.DataType switch
        {
            DataType.Float => tensor(proto.FloatData.ToArray(), dims),
            DataType.Int64 => tensor(proto.Int64Data.ToArray(), dims),
            _ => throw new InvalidDataException($"initializer {proto.Name}: typed data of {(DataType)proto.DataType} "
                + "is not read here"),
        };
    }
}
