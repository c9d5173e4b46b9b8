using System.Diagnostics;
using RetinaNet.Boxes;
using RetinaNet.Checkpoints;
using RetinaNet.Data.Loading;
using RetinaNet.Distributed;
using RetinaNet.Model;
using RetinaNet.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Training;

/// <summary>Where a training run reports: log lines, checkpoints, TensorBoard, metrics posts, validation.</summary>
public sealed class TrainingHooks
{
    public required Action<string> Log { get; init; }
    /// <summary>Saves a checkpoint of the model with the given training state (atomically); null on the ranks of a
    /// multi-process job that do not write checkpoints (all but rank 0).</summary>
    public Action<TrainingState>? SaveCheckpoint { get; init; }
    /// <summary>Saves the model as the best so far (validation's mAP rose); null on the ranks of a job but the first,
    /// or to keep none.</summary>
    public Action<TrainingState, double>? SaveBest { get; init; }
    public Action<long, IReadOnlyDictionary<string, double>>? Metrics { get; init; }
    /// <summary>Runs validation and returns named numbers to log (e.g. mAP), or null when there is no validation
    /// set.</summary>
    public Func<long, IReadOnlyDictionary<string, double>?>? Validate { get; init; }
    public Action<long, long, double>? Progress { get; init; }
}

public sealed class TrainingDivergedException(string message) : Exception(message);

/// <summary>ODTK's training loop: SGD with warm-up and step decay, autocast mixed precision, checkpoints on a timer,
/// at the end and on cancellation (Ctrl-C), validation every N iterations. The host never waits on the device inside
/// an iteration: losses accumulate on the device and are read once per log line, where a non-finite loss stops the
/// run (naming the first bad iteration) before any checkpoint can store the damaged weights.
/// <para>In a multi-process job (a <see cref="ProcessGroup"/>) every rank runs this loop on its shard of each global
/// batch; after backward the flat gradient buffer is averaged over the ranks with one all-reduce (not bucketed: it
/// runs once backward is done; at ~1 ms for ResNet50-FPN's 140 MB over NVLink against a step of ~100 ms, overlapping
/// it with backward is not worth per-bucket hooks), and so are the two loss values, so every rank applies the same
/// update and logs the global batch's loss.</para></summary>
public sealed class Trainer : IDisposable
{
    readonly RetinaNetModel model;
    readonly Device device;
    readonly TrainingSettings settings;
    readonly FlatSgd optimizer;
    readonly LossScaler? scaler;
    readonly DetectionLoss loss;
    readonly AnchorGenerator anchors;
    readonly LossSums sums;
    readonly ProcessGroup? group;
    readonly int globalBatch;
    readonly IDisposable? exactCpuGradients;

    public Trainer(RetinaNetModel model, Device device, TrainingSettings settings, ProcessGroup? group = null)
    {
        (this.model, this.device, this.settings, this.group) = (model, device, settings, group);
        globalBatch = settings.Batch * (group?.WorldSize ?? 1);
        // oneDNN's convolution backward is wrong for RetinaNet's output convolutions (see CpuNumerics)
        exactCpuGradients = device.type == DeviceType.CPU ? CpuNumerics.ExactGradients() : null;
        if (settings.ChannelsLast)
            Layouts.ToChannelsLast(model); // frozen weights too; the trainable ones move into the buffer below
        optimizer = new FlatSgd(
            model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter)),
            settings.Momentum, settings.WeightDecay, settings.ChannelsLast);
        scaler = settings.MixedPrecision == ScalarType.Float16 ? new LossScaler() : null;
        loss = new DetectionLoss(model.Config, model.Kernels);
        anchors = new AnchorGenerator(model.Config.Anchors);
        sums = new LossSums(device);
    }

    /// <summary>Restores optimizer, loss scale (and returns the iteration) from a checkpoint's training
    /// state.</summary>
    public long Restore(TrainingState state)
    {
        var (momentum, lossScale) = TrainingStateCodec.ReadOptimizer(state);
        optimizer.LoadState(momentum);
        if (scaler is not null && lossScale is LossScalerState s) scaler.LoadState(s);
        foreach (var t in momentum.Values) t.Dispose();
        return state.Iteration;
    }

    /// <summary>The start of a multi-process job: every rank takes rank 0's weights (all of the model's state),
    /// momentum, iteration and sampler position, after checking that all ranks built the same model and see the same
    /// dataset (one broadcast of a few numbers first: a mismatch is an error, not a hang). Returns the iteration to
    /// continue from. Without a group nothing happens.</summary>
    public long Synchronize(long iteration, ShardedSampler sampler, int datasetSize)
    {
        if (group is null) return iteration;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var state = sampler.State;
        long[] mine = [optimizer.FlatParams.numel(), datasetSize, iteration, state.Epoch, state.Position,
            optimizer.HasMomentum ? 1 : 0];
        var facts = tensor(mine).to(device);
        group.Broadcast(facts);
        var rank0 = facts.cpu().data<long>().ToArray();
        if (rank0[0] != mine[0])
            throw new InvalidDataException($"rank {group.Rank} built a model with {mine[0]} trainable weights, " +
                $"rank 0 one with {rank0[0]}: every rank must read the same MODEL, --fine-tune file and options " +
                "(a shared file system)");
        if (rank0[1] != mine[1])
            throw new InvalidDataException($"rank {group.Rank} sees {mine[1]} training images, rank 0 {rank0[1]}: " +
                "every rank must read the same annotations and images");
        sampler.Restore(new SamplerState(rank0[3], rank0[4]));
        optimizer.HasMomentum = rank0[5] != 0;
        group.Broadcast(optimizer.FlatParams);
        group.Broadcast(optimizer.FlatMomentum);
        foreach (var (_, t) in StateDict.Of(model).OrderBy(kv => kv.Key, StringComparer.Ordinal))
            if (!t.requires_grad)
                group.Broadcast(t); // frozen weights and buffers; the trainable ones are views of FlatParams
        return rank0[2];
    }

    /// <summary>Trains from <paramref name="iteration"/> (done so far) to the configured count. Returns the last
    /// iteration reached (less than the target when cancelled).</summary>
    public long Run(PrefetchingLoader loader, long iteration, TrainingHooks hooks, CancellationToken stop)
    {
        model.train();
        var clock = Stopwatch.StartNew();
        var lastCheckpoint = clock.Elapsed; var lastLog = clock.Elapsed;
        object? samplerState = null;
        long logStart = iteration;
        double fw = 0, bw = 0;
        var stages = new StageClock(device);
        while (iteration < settings.Iterations && !stop.IsCancellationRequested && !OutOfPatience)
        {
            using var host = loader.Next() ?? throw new InvalidOperationException("the training sampler ended");
            samplerState = host.ResumeState;
            iteration++;
            if (iteration == logStart + 1) // one iteration per log interval is timed with device syncs
            {
                stages.Reset();
                Step(host, iteration, stages);
                (fw, bw) = (stages.Seconds("data", "forward", "loss"),
                    stages.Seconds("backward", "all-reduce", "optimizer"));
            }
            else Step(host, iteration, null);
            group?.Tick();
            hooks.Progress?.Invoke(iteration, settings.Iterations, clock.Elapsed.TotalSeconds);

            bool last = iteration == settings.Iterations;
            if (clock.Elapsed - lastLog >= settings.LogInterval || last)
            {
                var (focal, box, bad) = sums.ReadAndReset();
                if (bad is long badIteration) throw Diverged(badIteration);
                double seconds = (clock.Elapsed - lastLog).TotalSeconds / Math.Max(1, iteration - logStart);
                double lr = settings.Schedule.ForStep(iteration);
                hooks.Log(TrainingLogLine.Format(iteration, settings.Iterations, focal, box, seconds, globalBatch,
                    fw, bw, lr));
                hooks.Metrics?.Invoke(iteration, MetricsPoster.TrainingMetrics(focal, box, globalBatch / seconds, lr)
                    .ToDictionary(m => m.Metric, m => m.Value));
                lastLog = clock.Elapsed; logStart = iteration;
            }
            if (settings.ValidationInterval > 0 && iteration % settings.ValidationInterval == 0 && !last
                && hooks.Validate is not null)
            {
                Validate(hooks, iteration, samplerState);
                model.train();
            }
            if (clock.Elapsed - lastCheckpoint >= settings.CheckpointInterval && !last)
            {
                Checkpoint(hooks, iteration, samplerState);
                lastCheckpoint = clock.Elapsed;
            }
        }
        Checkpoint(hooks, iteration, samplerState);
        if (iteration == settings.Iterations && hooks.Validate is not null) Validate(hooks, iteration, samplerState);
        return iteration;
    }

    /// <summary>One training step on a batch at <paramref name="iteration"/>'s learning rate (<see cref="Run"/>'s
    /// loop, and benchmarks outside it); with <paramref name="stages"/> the device is synchronised after each stage
    /// and its milliseconds added there.</summary>
    public void Step(HostBatch host, long iteration, StageClock? stages = null)
    {
        using var scope = NewDisposeScope();
        stages?.Start();
        using var batch = DeviceBatch.From(host, device);
        var images = settings.ChannelsLast ? Layouts.NhwcCopy(batch.Images) : batch.Images;
        stages?.Mark("data");
        HeadOutputs heads;
        using (settings.MixedPrecision is ScalarType dtype ? Autocast.Enable(device.type, dtype) : null)
            heads = model.forward(images);
        stages?.Mark("forward");
        // the loss runs in fp32 outside autocast (it converts the heads itself): focal terms of 1e-4-sized
        // probabilities need the mantissa
        var levels = anchors.For(batch.Images.shape[2], batch.Images.shape[3], heads);
        var (focal, box) = loss.Compute(heads, levels, batch.Targets);
        heads.Dispose();
        var total = focal.Plus(box);
        stages?.Mark("loss");
        (scaler is null ? total : scaler.Scale(total)).backward();
        stages?.Mark("backward");
        if (group is not null)
        {
            group.AllReduce(optimizer.FlatGrad, ReduceOp.Average);
            var losses = stack([focal.detach(), box.detach()]);
            group.AllReduce(losses, ReduceOp.Average);
            (focal, box) = (losses[0], losses[1]);
            stages?.Mark("all-reduce");
        }
        bool apply = true;
        if (scaler is not null)
        {
            apply = scaler.UnscaleAndCheck(optimizer.FlatGrad); // fp16 only: one host sync per step
            scaler.Update(apply);
        }
        if (apply) optimizer.Step(settings.Schedule.ForStep(iteration));
        optimizer.ZeroGrad();
        sums.Add(focal, box, iteration);
        stages?.Mark("optimizer");
    }

    void Checkpoint(TrainingHooks hooks, long iteration, object? samplerState)
    {
        if (hooks.SaveCheckpoint is null) return;
        ThrowIfDiverged();
        WithState(iteration, samplerState, hooks.SaveCheckpoint);
    }

    void WithState(long iteration, object? samplerState, Action<TrainingState> use)
    {
        var momentum = optimizer.State();
        try
        {
            use(TrainingStateCodec.Write(iteration, momentum, scaler?.State(), settings.Schedule, samplerState,
                settings.Seed));
        }
        finally
        {
            foreach (var t in momentum.Values) t.Dispose();
        }
    }

    /// <summary>The best validation mAP of this run and the iteration it came at; validations since then.</summary>
    public (double Map, long Iteration)? Best { get; private set; }
    int sinceBest;

    /// <summary>True once <see cref="TrainingSettings.Patience"/> validations in a row brought no better mAP.</summary>
    public bool OutOfPatience => settings.Patience > 0 && sinceBest >= settings.Patience;

    void Validate(TrainingHooks hooks, long iteration, object? samplerState)
    {
        ThrowIfDiverged();
        var results = hooks.Validate!(iteration);
        if (results is null) return; // ranks but the first: rank 0 scores
        hooks.Metrics?.Invoke(iteration, results);
        if (!results.TryGetValue("mAP", out double map)) return;
        if (Best is null || map > Best.Value.Map)
        {
            Best = (map, iteration);
            sinceBest = 0;
            if (hooks.SaveBest is { } save) WithState(iteration, samplerState, state => save(state, map));
        }
        else if (++sinceBest == settings.Patience)
            hooks.Log($"Stopping early: no better mAP in {settings.Patience} validations " +
                $"(best {Best.Value.Map:0.0000} at iteration {Best.Value.Iteration})");
    }

    /// <summary>Neither a checkpoint nor a validation may see weights that a non-finite loss has already
    /// damaged.</summary>
    void ThrowIfDiverged()
    {
        if (sums.Peek().Bad is long badIteration) throw Diverged(badIteration);
    }

    static TrainingDivergedException Diverged(long iteration) =>
        new($"the loss became NaN or infinite at iteration {iteration}; training stopped " +
            "(no checkpoint was written after it; an earlier one, if any, is intact). " +
            "If the logged loss was rising before it, try a lower --lr or a longer --warmup");

    public void Dispose()
    {
        exactCpuGradients?.Dispose();
        optimizer.Dispose();
        anchors.Dispose();
        sums.Dispose();
    }

    /// <summary>Running loss sums on the device, and the first iteration whose loss was not finite (−1:
    /// none).</summary>
    sealed class LossSums(Device device) : IDisposable
    {
        readonly Tensor focal = zeros(1, dtype: ScalarType.Float64, device: device);
        readonly Tensor box = zeros(1, dtype: ScalarType.Float64, device: device);
        readonly Tensor firstBad = full(1, Of(long.MaxValue), dtype: ScalarType.Int64, device: device);
        long count;

        public void Add(Tensor f, Tensor b, long iteration)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            focal.Plus_(f.detach().to(ScalarType.Float64));
            box.Plus_(b.detach().to(ScalarType.Float64));
            var finite = isfinite(f.detach()).logical_and(isfinite(b.detach()));
            using var now = iteration.ToScalar();
            firstBad.copy_(where(finite, firstBad, firstBad.clamp_max(now)));
            count++;
        }

        public (double Focal, double Box, long? Bad) Peek()
        {
            long bad = firstBad.cpu().item<long>();
            return (focal.cpu().item<double>() / Math.Max(1, count), box.cpu().item<double>() / Math.Max(1, count),
                bad == long.MaxValue ? null : bad);
        }

        public (double Focal, double Box, long? Bad) ReadAndReset()
        {
            var result = Peek();
            focal.zero_(); box.zero_(); count = 0;
            return result;
        }

        public void Dispose() { focal.Dispose(); box.Dispose(); firstBad.Dispose(); }
    }
}
