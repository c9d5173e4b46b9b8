using Microsoft.ML.OnnxRuntime;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;
using TorchSharp;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace RetinaNet.Export;

/// <summary>Copies between TorchSharp tensors (CPU) and ONNX Runtime values, byte for byte.</summary>
public static class OrtTensors
{
    public static OrtValue From(Tensor value)
    {
        using var host = value.detach().cpu().contiguous();
        var ort = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, ElementType(host.dtype),
            host.shape);
        host.bytes.CopyTo(ort.GetTensorMutableRawData());
        return ort;
    }

    public static Tensor ToTensor(OrtValue value)
    {
        var info = value.GetTensorTypeAndShape();
        var result = empty(info.Shape, ScalarTypeOf(info.ElementDataType));
        value.GetTensorMutableRawData().CopyTo(result.bytes);
        return result;
    }

    static TensorElementType ElementType(ScalarType type) => type switch
    {
        ScalarType.Float32 => TensorElementType.Float,
        ScalarType.Float16 => TensorElementType.Float16,
        ScalarType.Int64 => TensorElementType.Int64,
        ScalarType.Byte => TensorElementType.UInt8,
        ScalarType.Bool => TensorElementType.Bool,
        _ => throw new ArgumentException($"no ONNX Runtime element type for {type}"),
    };

    static ScalarType ScalarTypeOf(TensorElementType type) => type switch
    {
        TensorElementType.Float => ScalarType.Float32,
        TensorElementType.Float16 => ScalarType.Float16,
        TensorElementType.Int64 => ScalarType.Int64,
        TensorElementType.UInt8 => ScalarType.Byte,
        TensorElementType.Bool => ScalarType.Bool,
        _ => throw new ArgumentException($"ONNX Runtime output of type {type} is not read here"),
    };

    /// <summary>Runs the session on named inputs; returns the named outputs (all, when none are named) as
    /// tensors.</summary>
    public static Dictionary<string, Tensor> Run(InferenceSession session, IReadOnlyDictionary<string, Tensor> inputs,
        IReadOnlyList<string>? outputs = null)
    {
        var names = inputs.Keys.ToList();
        var values = names.Select(n => From(inputs[n])).ToList();
        try
        {
            var wanted = outputs ?? session.OutputNames;
            using var run = new RunOptions();
            using var results = session.Run(run, names, values, wanted.ToList());
            return wanted.Zip(results).ToDictionary(p => p.First, p => ToTensor(p.Second));
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }
}
