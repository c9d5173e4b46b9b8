namespace RetinaNet.Export;

/// <summary>Names in exported graphs, stable from export to export (passes that rewrite the graph, such as INT8
/// quantisation, find things by them):
/// <list type="bullet">
/// <item>Every Conv node is named by its module's state-dict path without <c>.weight</c>
/// (<c>backbones.ResNet18FPN.features.layer1.0.conv1</c>), with the frozen batch norm that follows it folded in; its
/// weight initializer is <c>NODE.weight</c> and its bias <c>NODE.bias</c>. The heads run at every pyramid level with
/// the same weights: their Conv nodes are <c>cls_head.8/level1</c> .. <c>/level5</c> (ODTK's level numbering: level1 is
/// P3), all reading the initializers <c>cls_head.8.weight</c> and <c>cls_head.8.bias</c>.</item>
/// <item>A node's single output is named as the node; nodes after a module are named <c>MODULE.relu</c>,
/// <c>MODULE.add</c>, ...</item>
/// <item>Inputs and outputs: see the constants.</item>
/// </list></summary>
public static class OnnxNames
{
    /// <summary>Full graph: uint8 RGB pixels [batch, 3, H, W], images at the top-left, anything on the
    /// padding.</summary>
    public const string Images = OnnxRuntime.ExportedFile.Images;
    /// <summary>Full graph: int64 [batch, 2], each image's (height, width) before padding; the padding is
    /// masked.</summary>
    public const string ImageSizes = OnnxRuntime.ExportedFile.ImageSizes;
    /// <summary>Full graph outputs: [batch, D, 4] inclusive pixel corners in the padded input, [batch, D] scores
    /// (0 on padding rows), [batch, D] int64 class indices.</summary>
    public const string Boxes = OnnxRuntime.ExportedFile.Boxes, Scores = OnnxRuntime.ExportedFile.Scores,
        Classes = OnnxRuntime.ExportedFile.Classes;
    /// <summary>Raw-heads graph (ODTK's layout): normalised float input.</summary>
    public const string RawInput = "input_1";

    /// <summary>Raw-heads outputs: sigmoid class maps [batch, A*C, H, W] and box maps [batch, A*4, H, W] of level i
    /// (0-based).</summary>
    public static string RawScores(int level) => $"score_{level + 1}";
    public static string RawBoxes(int level) => $"box_{level + 1}";

    public static string Weight(string modulePath) => modulePath + ".weight";
    public static string Bias(string modulePath) => modulePath + ".bias";

    /// <summary>Conv node of a head layer at a pyramid level (0-based).</summary>
    public static string AtLevel(string modulePath, int level) => $"{modulePath}/level{level + 1}";

    /// <summary>The module path (and initializer prefix) of a Conv node name.</summary>
    public static string ModulePathOf(string convNode)
    {
        int slash = convNode.IndexOf('/');
        return slash < 0 ? convNode : convNode[..slash];
    }
}
