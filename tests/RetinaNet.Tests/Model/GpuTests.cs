using RetinaNet.Boxes;
using RetinaNet.Model;
using TorchSharp;
using Xunit;
using static RetinaNet.Native.Scalars;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Model;

/// <summary>Run where a CUDA GPU is visible (skipped, saying so, elsewhere).</summary>
public class GpuTests
{
    [GpuFact]
    public void ForwardAndBackwardRunOnCuda()
    {
        using var scope = NewDisposeScope();
        var (model, loss) = TrainingLoss.Once(CUDA, 256, 256,
            tensor(new float[] { 10, 10, 50, 60, 1, 100, 100, 40, 40, 2 }, [2, 1, 5]));
        using var _ = model;
        loss.backward();
        Assert.True(float.IsFinite(loss.item<float>()));
        Assert.All(model.parameters(), p => Assert.Equal(DeviceType.CUDA, p.grad!.device_type));
    }

    [GpuFact]
    public void NmsOnCudaEqualsNmsOnCpu()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(11);
        var xy = rand(2, 3000, 2, generator: g) * Of(500);
        var boxes = cat([xy, xy.Plus(rand(2, 3000, 2, generator: g) * Of(100)).Plus(Of(5))], -1);
        var scores = rand(2, 3000, generator: g);
        var classes = randint(0, 5, [2, 3000], generator: g);
        using var cpu = BatchedNms.Run(scores, boxes, classes, null, 0.5, 300);
        using var gpu = BatchedNms.Run(scores.cuda(), boxes.cuda(), classes.cuda(), null, 0.5, 300);
        Assert.True(gpu.Indices.cpu().equal(cpu.Indices).all().item<bool>());
    }

    [GpuFact]
    public void NvJpegResolvesEverySymbol() =>
        Assert.True(RetinaNet.Native.NvJpeg.Available, RetinaNet.Native.NvJpeg.MissingReason);

    [GpuFact]
    public void CudaGraphEntryPointsResolve() =>
        Assert.True(RetinaNet.Native.CudaGraphs.Available, RetinaNet.Native.CudaGraphs.MissingReason);

    static RetinaNet.Data.Loading.HostBatch Batch(Generator g, int height, int width) =>
        RetinaNet.Data.Loading.HostBatch.Collate(Enumerable.Range(0, 2).Select(i =>
            new RetinaNet.Data.Loading.PreparedImage(i, i, new RetinaNet.Data.Transforms.ImageWithBoxes(
                randint(0, 256, [3, height, width], generator: g).to(ScalarType.Byte), [], []), width, height))
            .ToList(), [false, false], Fpn.Stride, pin: true);

    static void SameDetections(IReadOnlyList<RetinaNet.Inference.ImageDetections> b,
        IReadOnlyList<RetinaNet.Inference.ImageDetections> a, string what)
    {
        Assert.Equal(2, a.Count);
        for (int i = 0; i < a.Count; i++)
        {
            Assert.Equal(b[i].Classes, a[i].Classes);
            for (int j = 0; j < a[i].Count; j++)
                Assert.True(Math.Abs(a[i].Scores[j] - b[i].Scores[j]) < 1e-5
                    && Math.Abs(a[i].Boxes[j] - b[i].Boxes[j]) < 1e-3, $"{what}: image {i} detection {j}");
        }
    }

    /// <summary>Two shapes, two graphs sharing one memory pool (and, where asked, one capture stream), replayed in
    /// turn: each replay's detections are the eager ones, though the other shape's replay overwrote the pool in
    /// between.</summary>
    [GpuTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReplayedCudaGraphsGiveTheEagerDetections(bool sharedCaptureStream)
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(3);
        using var model = new RetinaNetModel(new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 4,
            Inference = new InferenceConfig { ScoreThreshold = 0 } },
            RetinaNet.Native.KernelOptions.Default with { SharedCaptureStream = sharedCaptureStream });
        model.Initialize(3);
        model.to(CUDA).eval();
        model.PrepareForInference(); // as infer runs it: the fused convolutions inside the graphs
        var g = new Generator(5);
        using var wide = Batch(g, 256, 384);
        using var tall = Batch(g, 384, 256);
        using var graphed = new RetinaNet.Inference.DetectionRunner(model, CUDA, null, cudaGraphs: true);
        using var eager = new RetinaNet.Inference.DetectionRunner(model, CUDA, null);
        graphed.Detect(wide); graphed.Detect(tall); // captures both
        for (int round = 0; round < 2; round++)
        {
            SameDetections(eager.Detect(wide), graphed.Detect(wide), $"256x384, round {round}");
            SameDetections(eager.Detect(tall), graphed.Detect(tall), $"384x256, round {round}");
        }
    }

    [Fact]
    public void CudaGraphsSayWhyTheyAreUnavailableWithoutCuda()
    {
        if (cuda.is_available()) return; // the GPU facts above cover that case
        Assert.False(RetinaNet.Native.CudaGraphs.Available);
        Assert.Contains("libtorch_cuda", RetinaNet.Native.CudaGraphs.MissingReason);
    }
}
