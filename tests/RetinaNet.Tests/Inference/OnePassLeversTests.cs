using RetinaNet.Data.Loading;
using RetinaNet.Data.Transforms;
using RetinaNet.Inference;
using RetinaNet.Model;
using RetinaNet.Native;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Inference;

/// <summary>The passes that compute libtorch's values in fewer passes (the input kernel, the FPN's top-down sums, the
/// class bias added by decode's copy) change no detection: a bf16 channels-last model with them against its twin
/// without them, on the same batch, give equal detections, bit for bit.</summary>
public class OnePassLeversTests
{
    [GpuFact]
    public void DetectionsEqualTheTwinWithoutThem()
    {
        using var scope = NewDisposeScope();
        var config = new DetectorConfig
        {
            Backbones = ["ResNet18FPN"], Classes = 4, Inference = new InferenceConfig { ScoreThreshold = 0 },
        };
        // the stem stays 7×7 in both: its blocks' sum is a different rounding, not the same values
        var on = KernelOptions.Default with { SpaceToDepthStem = false };
        var off = on with { InputKernel = false, FpnMerge = false, ClassBiasInCopy = false };
        using var model = new RetinaNetModel(config, on);
        model.Initialize(7);
        using var twin = new RetinaNetModel(config, off);
        StateDict.Load(twin, StateDict.Of(model), "the model with the one-pass levers");
        var ran = new List<bool>();
        foreach (var m in new[] { model, twin })
        {
            m.to(CUDA);
            m.PrepareForInference(ScalarType.BFloat16, channelsLast: true);
            m.to(ScalarType.BFloat16);
            Layouts.ToChannelsLast(m);
            ran.Add(m.BackboneModules.All(b => b.Backbone.MergeKernel));
        }
        Assert.Equal([true, false], ran);
        var g = new Generator(2);
        using var host = HostBatch.Collate(new[] { (120, 200), (128, 160) }.Select((s, i) => new PreparedImage(i, i,
            new ImageWithBoxes(randint(0, 256, [3, s.Item1, s.Item2], generator: g).to(ScalarType.Byte), [], []),
            s.Item2, s.Item1)).ToList(), [false, false], 128, pin: true);
        using var ours = new DetectionRunner(model, CUDA, ScalarType.BFloat16);
        using var theirs = new DetectionRunner(twin, CUDA, ScalarType.BFloat16);
        var (a, b) = (ours.Detect(host), theirs.Detect(host));
        Assert.Equal(b.Count, a.Count);
        for (int i = 0; i < a.Count; i++)
        {
            Assert.True(a[i].Count > 0);
            Assert.Equal(b[i].Scores, a[i].Scores);
            Assert.Equal(b[i].Boxes, a[i].Boxes);
            Assert.Equal(b[i].Classes, a[i].Classes);
        }
    }
}
