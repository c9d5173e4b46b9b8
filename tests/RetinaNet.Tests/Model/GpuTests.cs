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

    [GpuFact]
    public void ReplayedCudaGraphGivesTheEagerDetections()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(3);
        using var model = new RetinaNetModel(new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 4,
            Inference = new InferenceConfig { ScoreThreshold = 0 } });
        model.Initialize(3);
        model.to(CUDA).eval();
        var g = new Generator(5);
        var images = Enumerable.Range(0, 2).Select(i => new RetinaNet.Data.Loading.PreparedImage(i, i,
            new RetinaNet.Data.Transforms.ImageWithBoxes(
                randint(0, 256, [3, 256, 384], generator: g).to(ScalarType.Byte), [], []), 384, 256)).ToList();
        using var host = RetinaNet.Data.Loading.HostBatch.Collate(images, [false, false], Fpn.Stride, pin: true);
        using var graphed = new RetinaNet.Inference.DetectionRunner(model, CUDA, null, cudaGraphs: true);
        using var eager = new RetinaNet.Inference.DetectionRunner(model, CUDA, null);
        graphed.Detect(host); // captures
        var a = graphed.Detect(host); var b = eager.Detect(host);
        Assert.Equal(2, a.Count);
        for (int i = 0; i < a.Count; i++)
        {
            Assert.Equal(b[i].Classes, a[i].Classes);
            for (int j = 0; j < a[i].Count; j++)
                Assert.True(Math.Abs(a[i].Scores[j] - b[i].Scores[j]) < 1e-5
                    && Math.Abs(a[i].Boxes[j] - b[i].Boxes[j]) < 1e-3, $"image {i} detection {j}");
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
