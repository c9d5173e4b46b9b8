using RetinaNet.Checkpoints;
using RetinaNet.Data.Loading;
using static TorchSharp.torch;

namespace RetinaNet.Training;

/// <summary>Training state ↔ checkpoint content. 'optimizer' has torch's SGD state_dict shape ('state' with a
/// momentum_buffer per parameter — keyed by parameter name, not index — and 'param_groups'), 'scheduler' LambdaLR's
/// ('last_epoch', 'base_lrs'), and 'training' ours: sampler epoch and position, loss scale, seed.</summary>
public static class TrainingStateCodec
{
    public static TrainingState Write(long iteration, Dictionary<string, Tensor> momentum, LossScalerState? lossScale,
        LearningRateSchedule schedule, object? samplerState, long seed)
    {
        var state = new OrderedDictionary<string, object?>();
        foreach (var (name, buffer) in momentum)
            state[name] = new OrderedDictionary<string, object?> { ["momentum_buffer"] = buffer.detach().cpu() };
        var optimizer = new OrderedDictionary<string, object?>
        {
            ["state"] = state,
            ["param_groups"] = new List<object?> { new OrderedDictionary<string, object?> { ["lr"] = schedule.BaseLr,
                ["momentum"] = 0.9, ["params"] = momentum.Keys.Cast<object?>().ToList() } },
        };
        var scheduler = new OrderedDictionary<string, object?> { ["last_epoch"] = iteration,
            ["base_lrs"] = new List<object?> { schedule.BaseLr } };
        var extra = new OrderedDictionary<string, object?> { ["seed"] = seed };
        if (samplerState is SamplerState s) extra["sampler"] = new List<object?> { s.Epoch, s.Position };
        if (lossScale is LossScalerState ls) extra["loss_scale"] = new List<object?> { ls.Scale, (long)ls.GoodSteps };
        return new TrainingState(iteration, optimizer, scheduler, extra);
    }

    /// <summary>Momentum buffers by parameter name (CPU tensors the caller disposes) and the loss scale if
    /// saved.</summary>
    public static (Dictionary<string, Tensor> Momentum, LossScalerState? LossScale) ReadOptimizer(TrainingState saved)
    {
        var momentum = new Dictionary<string, Tensor>();
        if (saved.Optimizer is OrderedDictionary<string, object?> optimizer
            && optimizer.GetValueOrDefault("state") is OrderedDictionary<string, object?> state)
            foreach (var (name, entry) in state)
                if (entry is OrderedDictionary<string, object?> e
                    && e.GetValueOrDefault("momentum_buffer") is Tensor t) momentum[name] = t;
        LossScalerState? scale = Extra(saved)?.GetValueOrDefault("loss_scale") is List<object?> { Count: 2 } ls
            ? new LossScalerState(Convert.ToDouble(ls[0]), Convert.ToInt32(ls[1])) : null;
        return (momentum, scale);
    }

    public static SamplerState? Sampler(TrainingState saved) =>
        Extra(saved)?.GetValueOrDefault("sampler") is List<object?> { Count: 2 } s
            ? new SamplerState(Convert.ToInt64(s[0]), Convert.ToInt64(s[1])) : null;

    public static long? Seed(TrainingState saved) => Extra(saved)?.GetValueOrDefault("seed") is long seed ? seed : null;

    static OrderedDictionary<string, object?>? Extra(TrainingState saved)
        => saved.Extra as OrderedDictionary<string, object?>;
}
