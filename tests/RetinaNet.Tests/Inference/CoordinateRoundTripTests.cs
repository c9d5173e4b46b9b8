using RetinaNet.Boxes;
using RetinaNet.Data.Loading;
using RetinaNet.Data.Transforms;
using RetinaNet.Inference;
using RetinaNet.Model;
using Xunit;
using static RetinaNet.Native.Scalars;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Inference;

/// <summary>Training and inference must agree on coordinates: take COCO boxes, run them through the inference resize,
/// batching and target assignment exactly as training does, build the head outputs a perfect model would give (the
/// assigned class at each foreground anchor, the encoded targets as box deltas), decode + NMS them, and map them back:
/// the original COCO boxes must come out.</summary>
public class CoordinateRoundTripTests
{
    [Theory]
    [InlineData(200, 150, 300, 1000)] // upscaled x2, padded 400x300 -> 512x384
    [InlineData(640, 480, 320, 1333)] // downscaled x0.667, padded to 512x384
    public void PerfectHeadsGiveBackTheOriginalBoxes(int width, int height, int resize, int maxSize)
    {
        // (x, y, w, h) in original pixels, and classes
        var coco = new (float X, float Y, float W, float H, int C)[] { (30, 40, 64, 48, 1), (100, 20, 36, 90, 0) };
        var boxes = coco.SelectMany(b => new[] { b.X, b.Y, b.X + b.W, b.Y + b.H }).ToArray();
        var image = new ImageWithBoxes(zeros(3, height, width, ScalarType.Byte), boxes,
            coco.Select(b => b.C).ToArray());
        Augmentation.ForInference(resize, maxSize).Apply(image, new Random(0));
        using var host = HostBatch.Collate([new PreparedImage(0, 7, image, width, height)], [false], Fpn.Stride,
            pin: false);
        image.Dispose();

        long H = host.Pixels.shape[2], W = host.Pixels.shape[3];
        var config = new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 2 };
        using var generator = new AnchorGenerator(config.Anchors);
        var sizes = Enumerable.Range(3, 5).Select(l => (H >> l, W >> l)).ToList();
        var levels = generator.For(H, W, sizes, CPU);
        using var assigned = new TargetAssigner().Assign(cat(levels.PerLevel, 0), host.Targets);

        // a perfect head: logit +12 for the assigned class of foreground anchors, -12 elsewhere; deltas = targets
        int a = config.Anchors.Count, k = config.Classes;
        var labels = assigned.Labels[0];
        var logits = full(labels.shape[0], k, Of(-12.0)).scatter_(1, (labels - Of(1)).clamp_min(Of(0)).unsqueeze(1),
            where(labels > Of(0), 12f, -12f).unsqueeze(1));
        var cls = new List<Tensor>(); var reg = new List<Tensor>();
        long offset = 0;
        foreach (var (h, w) in sizes)
        {
            long n = a * h * w;
            // (a, y, x) anchor order -> head map [1, a*K, h, w] (channel a*K + k), as the loss reads it
            cls.Add(logits.narrow(0, offset, n).view(a, h, w, k).permute(0, 3, 1, 2).reshape(1, a * k, h, w));
            reg.Add(assigned.BoxDeltas[0].narrow(0, offset, n).view(a, h, w, 4).permute(0, 3, 1, 2)
                .reshape(1, a * 4, h, w));
            offset += n;
        }
        using var heads = new HeadOutputs([.. cls], [.. reg]);
        using var kept = Postprocess.Detect(heads, levels, k, new InferenceConfig(), (W, H));
        var detections = DetectionRunner.ToDetections(kept, host).Single();

        Assert.Equal(7, detections.ImageId);
        Assert.Equal(coco.Length, detections.Count); // NMS leaves one box per object (all anchors decode to it)
        foreach (var b in coco)
        {
            int j = Enumerable.Range(0, detections.Count).Single(i => detections.Classes[i] == b.C);
            var d = detections.Boxes.AsSpan(4 * j, 4).ToArray();
            Assert.Equal(new[] { b.X, b.Y, b.W, b.H }, d, (x, y) => Math.Abs(x - y) < 1e-3);
        }
    }
}
