using static TorchSharp.torch;

namespace RetinaNet.Model;

/// <summary>A classification network cut to return the C3, C4 and C5 feature maps (strides 8, 16, 32).</summary>
public abstract class FeatureBody : nn.Module<Tensor, Tensor[]>
{
    protected FeatureBody(string name) : base(name) { }

    /// <summary>Channels of C3, C4, C5.</summary>
    public abstract long[] Channels { get; }

    /// <summary>Prefixes of torchvision's state-dict keys this body does not have (classifier, unused tail).</summary>
    public abstract string[] UnusedTorchvisionPrefixes { get; }
}
