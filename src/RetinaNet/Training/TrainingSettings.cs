using static TorchSharp.torch;

namespace RetinaNet.Training;

/// <summary>Everything the loop needs besides the model and the data. <c>Batch</c> is this process's share.</summary>
public sealed record TrainingSettings
{
    public required long Iterations { get; init; }
    public required LearningRateSchedule Schedule { get; init; }
    public required int Batch { get; init; }
    public double WeightDecay { get; init; } = 1e-4;
    public double Momentum { get; init; } = 0.9;
    /// <summary>Autocast dtype (bf16 or fp16), null for full precision. fp16 adds dynamic loss scaling.</summary>
    public ScalarType? MixedPrecision { get; init; }
    /// <summary>NHWC strides for convolution weights, their gradients and the input (cuDNN's fastest tensor-core
    /// kernels want them); the flat optimizer buffer holds the weights in that order.</summary>
    public bool ChannelsLast { get; init; }
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromSeconds(60);
    public TimeSpan LogInterval { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Iterations between validations (0: only at the end, when validation is given).</summary>
    public long ValidationInterval { get; init; }
    /// <summary>Stop after this many validations in a row without a better mAP (0: never stop early).</summary>
    public int Patience { get; init; }
    public long Seed { get; init; }
}
