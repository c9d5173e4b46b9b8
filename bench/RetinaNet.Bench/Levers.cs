using RetinaNet.Native;

namespace RetinaNet.Bench;

/// <summary>The kernel levers every model bench takes, each measured against its absence in one call:
/// --fused-conv, --shared-capture-stream, --folded-downsamples, --maxpool-kernel and --nhwc-decode, each by
/// default as the product runs it.</summary>
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
    };

    /// <summary>Which levers ran, as JSON members after a comma (on every line a bench prints).</summary>
    public static string Json(KernelOptions k) =>
        $", \"fused_conv\": {Bool(k.FusedConvolutions)}, \"folded_downsamples\": {Bool(k.FoldedDownsamples)}"
        + $", \"maxpool_kernel\": {Bool(k.MaxPool)}"
        + $", \"nhwc_decode\": {Bool(k.ChannelsLastDecode)}, \"shared_capture_stream\": {Bool(k.SharedCaptureStream)}";

    static string Bool(bool b) => b ? "true" : "false";
}
