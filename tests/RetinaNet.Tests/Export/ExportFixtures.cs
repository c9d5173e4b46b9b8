using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using RetinaNet.Model;
using static RetinaNet.Native.Scalars;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Export;

/// <summary>Models for export tests, from their own seeded generator (the global RNG is untouched): He-normal convs,
/// frozen batch norm statistics calibrated on a noise batch (per-channel means and variances far from 0 and 1) then
/// given random scales and shifts, class prior bias -2. Scores spread over (0, 1) without ties, so detection order
/// comparisons are meaningful, and any folding or layout mistake shows.</summary>
static class ExportFixtures
{
    public static RetinaNetModel Model(string backbone, int classes = 3, long seed = 1)
    {
        var model = new RetinaNetModel(new DetectorConfig { Backbones = [backbone], Classes = classes });
        var generator = new TorchSharp.torch.Generator((ulong)seed);
        using (no_grad())
        {
            foreach (var (key, t) in StateDict.Of(model))
            {
                if (StateDict.IsBatchCounter(key)) continue;
                // body convs He-normal (batch norm calibrates them); FPN and head convs (no norm)
                // keep the variance in check
                double fanIn = t.dim() == 4 ? t.shape[1] * t.shape[2] * t.shape[3] : 1;
                if (t.dim() == 4) t.normal_(0, Math.Sqrt((key.Contains(".features.") ? 2.0 : 1.0) / fanIn), generator);
                else t.normal_(0, 0.05, generator);
            }
            using var noise = randn([2, 3, 256, 256], generator: generator);
            model.CalibrateBatchNorm(noise);
            // Residual branches end small (as zero-init-residual training would), so deep bodies do not blow up.
            var norms = model.named_modules().Where(m => m.module is FrozenBatchNorm2d).ToList();
            string lastOfBranch = norms.Any(n => n.name.EndsWith(".bn3")) ? ".bn3" : ".bn2";
            foreach (var (name, norm) in norms)
            {
                var buffers = norm.named_buffers().ToDictionary(b => b.name, b => b.buffer);
                if (name.EndsWith(lastOfBranch)) buffers["weight"].uniform_(0.1, 0.3, generator);
                else buffers["weight"].uniform_(0.7, 1.3, generator);
                buffers["bias"].normal_(0, 0.1, generator);
            }
            StateDict.Of(model)[model.ClassOutputPrefix + "bias"].fill_(Of(-2));
        }
        model.eval();
        return model;
    }

    /// <summary>uint8 noise [3, H, W] from a seeded generator.</summary>
    public static Tensor NoiseImage(int height, int width, long seed)
    {
        var generator = new TorchSharp.torch.Generator((ulong)seed);
        return randint(0, 256, [3, height, width], generator: generator).to(ScalarType.Byte);
    }

    public static InferenceSession Session(Onnx.ModelProto proto) => new(proto.ToByteArray());
}
