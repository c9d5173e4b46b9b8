using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RetinaNet.Model;

/// <summary>What a module needs to write its forward as ONNX nodes beside that forward. Export implements it over its
/// graph builder, so Model does not depend on Export. Values are named by strings; each method returns the name of
/// its output. Node names follow state-dict paths (Export's OnnxNames).</summary>
public interface IOnnxEmitter
{
    /// <summary>The module's state-dict path in the exported model; at a pyramid level (the heads run at all levels
    /// with the same weights), the path of its node at that level.</summary>
    string PathOf(nn.Module module, int? level = null);
    /// <summary>A Conv named <c>PathOf(conv, level)</c>, with <paramref name="norm"/> folded into its
    /// weights.</summary>
    string Conv(string input, Conv2d conv, FrozenBatchNorm2d? norm = null, int? level = null);
    /// <summary>ReLU, named <c>INPUT.relu</c> unless named.</summary>
    string Relu(string input, string? name = null);
    string Relu6(string input, string name);
    string Add(string a, string b, string name);
    string MaxPool(string input, MaxPool2d pool);
    /// <summary>Nearest 2x upsampling: out[i] = in[floor(i / 2)].</summary>
    string Upsample2x(string input, string name);
}

/// <summary>A module that writes its own forward as ONNX nodes.</summary>
public interface IOnnxExportable<TOutput>
{
    TOutput EmitOnnx(IOnnxEmitter g, string input);
}
