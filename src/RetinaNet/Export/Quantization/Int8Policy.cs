using RetinaNet.Model;

namespace RetinaNet.Export.Quantization;

/// <summary>What an INT8 export leaves in float: the two output convolutions (their logits and deltas go straight
/// into sigmoid scores and box decoding, where int8 steps would show) and all post-processing. Every other
/// convolution gets int8 input and weights.</summary>
public static class Int8Policy
{
    public static IReadOnlySet<string> FloatConvolutions(RetinaNetModel model)
        => model.OutputConvolutions.ToHashSet(StringComparer.Ordinal);
}
