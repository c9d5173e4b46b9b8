namespace RetinaNet.Native;

/// <summary>Which of our CUDA kernels (<see cref="CudaKernels"/>) run, and two choices of post-processing without
/// them. A kernel that is on still runs only where it can (a CUDA device, NVRTC, a shape it takes); elsewhere
/// libtorch's operations compute the same result. <see cref="Default"/> is what the product runs; benchmarks and tests
/// turn kernels off to compare. A model carries its options (<see cref="Model.RetinaNetModel.Kernels"/>) to its frozen
/// batch norms, and its trainer and detection runner pass them on to the loss and post-processing.</summary>
public sealed record KernelOptions
{
    /// <summary>Every kernel on.</summary>
    public static KernelOptions Default { get; } = new();

    /// <summary>Every kernel off: libtorch's operations throughout (the post-processing choices as in
    /// <see cref="Default"/>).</summary>
    public static KernelOptions None { get; } = new()
    {
        Nms = false, TopK = false, Assign = false, FusedLosses = false, AffineRelu = false,
        AffineReluInTraining = false, FusedConvolutions = false, FoldedDownsamples = false, MaxPool = false,
        ChannelsLastDecode = false, SpaceToDepthStem = false, InputKernel = false,
        FpnMerge = false, ClassBiasInCopy = false,
    };

    /// <summary>Class-aware NMS by <see cref="Boxes.NmsKernel"/> instead of the tensor ops of
    /// <see cref="Boxes.BatchedNms"/>.</summary>
    public bool Nms { get; init; } = true;

    /// <summary>Decode's per-level top-k by <see cref="Inference.TopKKernel"/> instead of libtorch's topk.</summary>
    public bool TopK { get; init; } = true;

    /// <summary>Decode of channels-last bf16/fp16 head outputs (what `infer` runs on a GPU): the class logits copied to
    /// NCHW by <see cref="Inference.NchwCopyKernel"/> instead of libtorch's strided copy, the box values gathered where
    /// they lie instead of copied. The same candidates (bench/NOTES.md).</summary>
    public bool ChannelsLastDecode { get; init; } = true;

    /// <summary>Training's anchor matching by <see cref="Boxes.AssignKernel"/> instead of the tensor ops of
    /// <see cref="Boxes.TargetAssigner"/>.</summary>
    public bool Assign { get; init; } = true;

    /// <summary>Training's focal and box losses by <see cref="Model.FocalLossKernel"/> and
    /// <see cref="Model.BoxLossKernel"/> instead of the tensor ops of <see cref="Model.DetectionLoss"/>.</summary>
    public bool FusedLosses { get; init; } = true;

    /// <summary>Frozen batch norm (+ residual, ReLU) by <see cref="Model.AffineReluKernel"/> instead of libtorch's
    /// addcmul, add_ and relu_.</summary>
    public bool AffineRelu { get; init; } = true;

    /// <summary>Where gradients are needed too (training): the kernel's autograd node
    /// (<see cref="Model.FrozenNormReluFunction"/>). Only where <see cref="AffineRelu"/> is on.</summary>
    public bool AffineReluInTraining { get; init; } = true;

    /// <summary>Inference only: every frozen batch norm followed by a ReLU folded into the convolution before it, and
    /// convolution, bias, residual and ReLU run as one cuDNN call (<see cref="AtenOps"/>) instead of the convolution
    /// and <see cref="Model.AffineReluKernel"/>; the heads' convolution + ReLU layers likewise. A failure inside cuDNN
    /// there (no engine for a shape, out of memory) aborts the process instead of throwing, so the calls run only on
    /// inputs cuDNN's tensor-core engines take (<see cref="AtenOps.CanFuse"/>).</summary>
    public bool FusedConvolutions { get; init; } = true;

    /// <summary>With <see cref="FusedConvolutions"/>: each residual block's downsample norm folded into its 1×1
    /// convolution, its shift into the bias of the block's last fused call (<see cref="Model.FoldedJoin"/>), instead
    /// of the downsample's convolution and libtorch's addcmul over its output.</summary>
    public bool FoldedDownsamples { get; init; } = true;

    /// <summary>The stem's max pooling of NHWC bf16/fp16 activations by <see cref="Model.MaxPoolKernel"/> instead of
    /// libtorch's (bench/NOTES.md).</summary>
    public bool MaxPool { get; init; } = true;

    /// <summary>With <see cref="FusedConvolutions"/>, a channels-last bf16/fp16 ResNet's stem as a 4×4 convolution over
    /// the input's 2×2 blocks, norm folded and ReLU fused (<see cref="Model.SpaceToDepthStem"/>), instead of the 7×7
    /// convolution over 3 channels and a norm + ReLU pass (bench/NOTES.md).</summary>
    public bool SpaceToDepthStem { get; init; } = true;

    /// <summary>Inference of a channels-last model: the batch normalised, padding zeroed, cast and laid out NHWC in one
    /// pass by <see cref="Inference.InputKernel"/> instead of libtorch's eight (the same values).</summary>
    public bool InputKernel { get; init; } = true;

    /// <summary>Inference of a bf16/fp16 channels-last model prepared for it: each FPN top-down sum (lateral bias,
    /// nearest upsampling, add) as one pass of <see cref="Model.FpnMergeKernel"/> instead of libtorch's three (the
    /// same values).</summary>
    public bool FpnMerge { get; init; } = true;

    /// <summary>With <see cref="ChannelsLastDecode"/> and the heads' towers fused: the class head's last convolution
    /// runs without its bias, which the NCHW copy of the logits adds (<see cref="Inference.NchwCopyKernel"/>) instead
    /// of a pass of its own over the largest output of the call (the same values).</summary>
    public bool ClassBiasInCopy { get; init; } = true;

    /// <summary>Without the top-k kernel, rows longer than this are searched in chunks
    /// (<see cref="Inference.Postprocess.TopK"/>); <c>long.MaxValue</c>: one selection per row.</summary>
    public long ChunkedTopKLength { get; init; } = 1 << 18;

    /// <summary>Without the NMS kernel: whether <see cref="Inference.DetectionGraphs"/> captures the tensor-op NMS
    /// too, or (default) runs the exact NMS eagerly after the replay. The eager one measured faster at batch 1
    /// (bench/RESULTS.md).</summary>
    public bool SuppressInGraph { get; init; }

    /// <summary><see cref="Inference.DetectionGraphs"/> captures every shape on one side stream (what
    /// <c>torch.cuda.graph</c> does) instead of a new pooled stream each: libtorch's allocator keeps freed blocks per
    /// stream, so the captures' warm-ups reuse one stream's instead of each keeping its own.</summary>
    public bool SharedCaptureStream { get; init; } = true;
}
