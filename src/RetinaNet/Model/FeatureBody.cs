using static TorchSharp.torch;

namespace RetinaNet.Model;

/// <summary>A classification network cut to return the C3, C4 and C5 feature maps (strides 8, 16, 32).</summary>
public abstract class FeatureBody : nn.Module<Tensor, Tensor[]>, IOnnxExportable<string[]>
{
    protected FeatureBody(string name) : base(name) { }

    /// <summary>Which of our kernels the body may run (the model sets its own options here,
    /// <see cref="RetinaNetModel.UseKernels"/>).</summary>
    public Native.KernelOptions Kernels { get; internal set; } = Native.KernelOptions.Default;

    /// <summary>Channels of C3, C4, C5.</summary>
    public abstract long[] Channels { get; }

    /// <summary>Prefixes of torchvision's state-dict keys this body does not have (classifier, unused tail).</summary>
    public abstract string[] UnusedTorchvisionPrefixes { get; }

    /// <summary>The stride-4 stem that training keeps frozen (torchvision's trainable_layers=3, detectron2's
    /// FREEZE_AT=2): with frozen batch norm its ImageNet statistics can scale gradients by 100x and more, which made
    /// BCCD training diverge for us and for torchvision alike when it trained.</summary>
    public abstract IEnumerable<nn.Module> Stem { get; }

    /// <summary>Convolutions followed by a frozen norm and a ReLU, which inference may fold into one call
    /// (<see cref="FrozenBatchNorm2d.FoldInto"/>); none unless the body lists them.</summary>
    public virtual IEnumerable<(TorchSharp.Modules.Conv2d Conv, FrozenBatchNorm2d Norm)> ConvNormPairs => [];

    /// <summary>Residual blocks' downsamples with their blocks' last convolutions, which inference may run as one
    /// join (<see cref="FoldedJoin"/>, <see cref="Native.KernelOptions.FoldedDownsamples"/>).</summary>
    public virtual IEnumerable<DownsampleJoin> DownsampleJoins => [];

    /// <summary>For an inference-only model on a GPU: prepares the stem to run as one fused call where the body has
    /// such a form (<see cref="SpaceToDepthStem"/>), in <paramref name="dtype"/> and channels-last; drops it
    /// otherwise.</summary>
    public virtual void PrepareStem(ScalarType dtype, bool channelsLast) { }

    /// <summary>C3, C4, C5 as ONNX values, as <c>forward</c> computes them.</summary>
    public abstract string[] EmitOnnx(IOnnxEmitter g, string input);
}
