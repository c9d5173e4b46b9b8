using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RetinaNet.Model;

/// <summary>ODTK's FPN: P3-P5 from lateral 1x1 + top-down nearest upsampling + 3x3 smoothing, P6 from C5
/// (stride-2 3x3), P7 from relu(P6). Names as ODTK (features, lateral3..5, pyramid6/7, smooth3..5).</summary>
public sealed class Fpn : nn.Module<Tensor, Tensor[]>, IOnnxExportable<string[]>
{
    public const long Channels = 256;
    /// <summary>Inputs must be padded to a multiple of this: <see cref="PyramidLevels.InputMultiple"/>.</summary>
    public const int Stride = PyramidLevels.InputMultiple;

    readonly FeatureBody features;
    readonly Conv2d lateral3, lateral4, lateral5, pyramid6, pyramid7, smooth3, smooth4, smooth5;

    public Fpn(FeatureBody body) : base("FPN")
    {
        features = body;
        var c = body.Channels;
        lateral3 = nn.Conv2d(c[0], Channels, 1);
        lateral4 = nn.Conv2d(c[1], Channels, 1);
        lateral5 = nn.Conv2d(c[2], Channels, 1);
        pyramid6 = nn.Conv2d(c[2], Channels, 3, stride: 2, padding: 1);
        pyramid7 = nn.Conv2d(Channels, Channels, 3, stride: 2, padding: 1);
        smooth3 = nn.Conv2d(Channels, Channels, 3, padding: 1);
        smooth4 = nn.Conv2d(Channels, Channels, 3, padding: 1);
        smooth5 = nn.Conv2d(Channels, Channels, 3, padding: 1);
        RegisterComponents();
    }

    public FeatureBody Body => features;

    /// <summary>The FPN's own convolutions (not the body's): ODTK initialises them with Xavier-uniform, bias
    /// 0.</summary>
    public IEnumerable<Conv2d> OwnConvolutions
        => [lateral3, lateral4, lateral5, pyramid6, pyramid7, smooth3, smooth4, smooth5];

    // call(), not forward(): INT8 calibration observes convolution inputs through forward hooks.
    public override Tensor[] forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var c = features.forward(x);
        var p5 = lateral5.call(c[2]);
        var p4 = TopDown(lateral4, c[1], p5);
        var p3 = TopDown(lateral3, c[0], p4);
        var p6 = pyramid6.call(c[2]);
        var p7 = pyramid7.call(nn.functional.relu(p6));
        Tensor[] levels = [smooth3.call(p3), smooth4.call(p4), smooth5.call(p5), p6, p7];
        return levels.Select(l => l.MoveToOuterDisposeScope()).ToArray();
    }

    // ONNX upsamples by a fixed 2x: inputs are multiples of PyramidLevels.InputMultiple, so sizes always match.
    public string[] EmitOnnx(IOnnxEmitter g, string input)
    {
        string path = g.PathOf(this);
        var c = features.EmitOnnx(g, input);
        var p5 = g.Conv(c[2], lateral5);
        var p4 = g.Add(g.Conv(c[1], lateral4), g.Upsample2x(p5, $"{path}.p5.upsample"), $"{path}.p4");
        var p3 = g.Add(g.Conv(c[0], lateral3), g.Upsample2x(p4, $"{path}.p4.upsample"), $"{path}.p3");
        var p6 = g.Conv(c[2], pyramid6);
        var p7 = g.Conv(g.Relu(p6, $"{path}.p6.relu"), pyramid7);
        return [g.Conv(p3, smooth3), g.Conv(p4, smooth4), g.Conv(p5, smooth5), p6, p7];
    }

    /// <summary>For a model that only runs inference from here on: whether the top-down sums run as one pass each on
    /// a GPU (<see cref="FpnMergeKernel"/>, <see cref="Native.KernelOptions.FpnMerge"/>); it bypasses the lateral
    /// convolutions' module calls (and their hooks), so only a prepared model takes it.</summary>
    public bool MergeKernel { get; internal set; }

    // lateral(fine) + the coarser level upsampled to it
    Tensor TopDown(Conv2d lateral, Tensor fine, Tensor coarse)
    {
        if (MergeKernel && lateral.bias is { } bias && fine.device_type == DeviceType.CUDA
            && Layouts.IsDenseNhwc(fine) && fine.dtype == bias.dtype)
        {
            var merged = nn.functional.conv2d(fine, lateral.weight!, null, lateral.stride, lateral.padding,
                lateral.dilation);
            if (FpnMergeKernel.CanRun(merged, bias, coarse)) return FpnMergeKernel.RunInPlace(merged, bias, coarse);
            return merged.Plus_(bias.view(1, -1, 1, 1)).Plus_(UpsampleTo(coarse, fine)); // as the module adds it
        }
        return lateral.call(fine).Plus_(UpsampleTo(coarse, fine));
    }

    // Nearest 2x upsampling (ODTK: interpolate(scale_factor=2)), sized to the finer map so odd sizes still add up.
    static Tensor UpsampleTo(Tensor coarse, Tensor fine) =>
        nn.functional.interpolate(coarse, size: [fine.shape[2], fine.shape[3]], mode: InterpolationMode.Nearest);
}
