using System.Diagnostics;
using static TorchSharp.torch;

namespace RetinaNet.Training;

/// <summary>Wall time per named stage of a step, waiting for the device at every mark so that each stage's kernels are
/// charged to it (only on the steps being timed: the syncs stall the pipeline). Repeated names accumulate.</summary>
public sealed class StageClock(Device device)
{
    readonly Dictionary<string, double> milliseconds = new();
    readonly Stopwatch watch = new();

    public IReadOnlyDictionary<string, double> Milliseconds => milliseconds;

    public void Reset() => milliseconds.Clear();

    public void Start()
    {
        Sync();
        watch.Restart();
    }

    public void Mark(string stage)
    {
        Sync();
        milliseconds[stage] = milliseconds.GetValueOrDefault(stage) + watch.Elapsed.TotalMilliseconds;
        watch.Restart();
    }

    public double Seconds(params string[] stages) => stages.Sum(s => milliseconds.GetValueOrDefault(s)) / 1000;

    void Sync()
    {
        if (device.type == TorchSharp.DeviceType.CUDA) TorchSharp.torch.cuda.synchronize(device);
    }
}
