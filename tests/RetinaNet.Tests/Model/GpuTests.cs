using RetinaNet.Boxes;
using RetinaNet.Model;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Model;

/// <summary>Run where a CUDA GPU is visible (skipped, saying so, elsewhere).</summary>
public class GpuTests
{
    [GpuFact]
    public void ForwardAndBackwardRunOnCuda()
    {
        using var scope = NewDisposeScope();
        var (model, loss) = TrainingLoss.Once(CUDA, 256, 256, tensor(new float[] { 10, 10, 50, 60, 1, 100, 100, 40, 40, 2 }, [2, 1, 5]));
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
        var xy = rand(2, 3000, 2, generator: g) * 500;
        var boxes = cat([xy, xy + rand(2, 3000, 2, generator: g) * 100 + 5], -1);
        var scores = rand(2, 3000, generator: g);
        var classes = randint(0, 5, [2, 3000], generator: g);
        using var cpu = BatchedNms.Run(scores, boxes, classes, null, 0.5, 300);
        using var gpu = BatchedNms.Run(scores.cuda(), boxes.cuda(), classes.cuda(), null, 0.5, 300);
        Assert.True(gpu.Indices.cpu().equal(cpu.Indices).all().item<bool>());
    }

    [GpuFact]
    public void NvJpegResolvesEverySymbol() => Assert.True(RetinaNet.Native.NvJpeg.Available, RetinaNet.Native.NvJpeg.MissingReason);
}
