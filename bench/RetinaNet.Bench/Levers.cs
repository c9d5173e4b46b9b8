using RetinaNet.Native;

namespace RetinaNet.Bench;

/// <summary>The kernel levers every model bench takes, each measured against its absence in one call:
/// --fused-conv, --shared-capture-stream, --folded-downsamples, --maxpool-kernel, --nhwc-decode, --s2d-stem,
/// --input-kernel, --fpn-merge and --class-bias-in-copy, each by default as the product runs it.</summary>
static class Levers
{
    public static KernelOptions Apply(KernelOptions options, Func<string, string, string> opt) => options with
    {
        FusedConvolutions = options.FusedConvolutions && opt("fused-conv", "true") == "true",
        SharedCaptureStream = opt("shared-capture-stream", "true") == "true",
        FoldedDownsamples = opt("folded-downsamples", Bool(KernelOptions.Default.FoldedDownsamples)) == "true",
        MaxPool = options.AffineRelu && opt("maxpool-kernel", Bool(KernelOptions.Default.MaxPool)) == "true",
        ChannelsLastDecode = options.TopK
            && opt("nhwc-decode", Bool(KernelOptions.Default.ChannelsLastDecode)) == "true",
        SpaceToDepthStem = opt("s2d-stem", Bool(KernelOptions.Default.SpaceToDepthStem)) == "true",
        InputKernel = opt("input-kernel", Bool(KernelOptions.Default.InputKernel)) == "true",
        FpnMerge = opt("fpn-merge", Bool(KernelOptions.Default.FpnMerge)) == "true",
        ClassBiasInCopy = opt("class-bias-in-copy", Bool(KernelOptions.Default.ClassBiasInCopy)) == "true",
    };

    /// <summary>Which levers ran, as JSON members after a comma (on every line a bench prints).</summary>
    public static string Json(KernelOptions k) =>
        $", \"fused_conv\": {Bool(k.FusedConvolutions)}, \"folded_downsamples\": {Bool(k.FoldedDownsamples)}"
        + $", \"maxpool_kernel\": {Bool(k.MaxPool)}"
        + $", \"nhwc_decode\": {Bool(k.ChannelsLastDecode)}, \"shared_capture_stream\": {Bool(k.SharedCaptureStream)}"
        + $", \"s2d_stem\": {Bool(k.SpaceToDepthStem)}, \"input_kernel\": {Bool(k.InputKernel)}"
        + $", \"fpn_merge\": {Bool(k.FpnMerge)}, \"class_bias_in_copy\": {Bool(k.ClassBiasInCopy)}";

    static string Bool(bool b) => b ? "true" : "false";
}
