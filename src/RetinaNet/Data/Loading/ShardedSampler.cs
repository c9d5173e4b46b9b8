namespace RetinaNet.Data.Loading;

/// <summary>Where a sampler stands: the epoch and the number of this rank's entries of that epoch already handed
/// out. Saved with a checkpoint, it lets <see cref="ShardedSampler.Restore"/> continue the exact same order.</summary>
public readonly record struct SamplerState(long Epoch, long Position);

/// <summary>One entry of a rank's shard: the dataset index, and whether it only pads the shard (a repeat of an
/// index another position already covers, so evaluation must not count it twice).</summary>
public readonly record struct ShardEntry(int Index, bool IsPadding);

/// <summary>Dataset indices for one rank of a data-parallel job, epoch after epoch, as torch's
/// <c>DistributedSampler</c>: each epoch's order (a permutation when shuffling, 0..n-1 otherwise) is padded by
/// wrapping around to a multiple of the world size, and rank r takes positions r, r + W, r + 2W, ... So the ranks'
/// shards are disjoint apart from the padding, cover every index, and all have <see cref="ShardSize"/> entries.
/// <para>The permutation of epoch e is a pure function of (seed, e): Fisher-Yates driven by <see cref="SplitMix64"/>
/// seeded with <see cref="EpochSeed"/>. <see cref="NextBatch"/> runs forever (training counts iterations, not epochs);
/// a batch that reaches the end of an epoch continues with the next one.</para></summary>
public sealed class ShardedSampler
{
    public int DatasetSize { get; }
    public int Rank { get; }
    public int WorldSize { get; }
    public bool Shuffle { get; }
    public ulong Seed { get; }
    /// <summary>Entries per rank per epoch: ceil(DatasetSize / WorldSize).</summary>
    public int ShardSize { get; }
    public SamplerState State => new(epoch, position);

    long epoch, position;
    long cachedEpoch = -1;
    ShardEntry[] cached = [];

    public ShardedSampler(int datasetSize, int rank = 0, int worldSize = 1, bool shuffle = true, ulong seed = 0)
    {
        if (datasetSize <= 0) throw new ArgumentOutOfRangeException(nameof(datasetSize),
            $"the dataset is empty (size {datasetSize}); a sampler needs at least one sample");
        if (worldSize <= 0) throw new ArgumentOutOfRangeException(nameof(worldSize),
            $"world size must be positive, got {worldSize}");
        if (rank < 0 || rank >= worldSize) throw new ArgumentOutOfRangeException(nameof(rank),
            $"rank must be in 0..{worldSize - 1}, got {rank}");
        (DatasetSize, Rank, WorldSize, Shuffle, Seed) = (datasetSize, rank, worldSize, shuffle, seed);
        ShardSize = (int)((datasetSize + (long)worldSize - 1) / worldSize);
    }

    /// <summary>The next <paramref name="batchSize"/> indices of this rank, crossing into the next epoch as
    /// needed.</summary>
    public int[] NextBatch(int batchSize)
    {
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize),
            $"batch size must be positive, got {batchSize}");
        var batch = new int[batchSize];
        for (int i = 0; i < batchSize; i++)
        {
            if (position == ShardSize) (epoch, position) = (epoch + 1, 0);
            batch[i] = Shard(epoch)[(int)position++].Index;
        }
        return batch;
    }

    /// <summary>Continues from a saved <see cref="State"/> (of a sampler with the same size, rank, world size, mode
    /// and seed).</summary>
    public void Restore(SamplerState state)
    {
        if (state.Epoch < 0 || state.Position < 0 || state.Position > ShardSize)
            throw new ArgumentOutOfRangeException(nameof(state),
                $"sampler state {state} does not fit a shard of {ShardSize} entries; was the checkpoint made with "
                + "another dataset or number of GPUs?");
        (epoch, position) = (state.Epoch, state.Position);
    }

    /// <summary>This rank's entries of <paramref name="epoch"/>, in order, with padding flagged.</summary>
    public IReadOnlyList<ShardEntry> Shard(long epoch)
    {
        if (epoch != cachedEpoch)
        {
            var order = Shuffle ? Permutation(DatasetSize, Seed, epoch) : Enumerable.Range(0, DatasetSize).ToArray();
            cached = new ShardEntry[ShardSize];
            for (int k = 0; k < ShardSize; k++)
            {
                long p = Rank + (long)k * WorldSize; // position in the padded order
                cached[k] = new ShardEntry(order[p % DatasetSize], p >= DatasetSize);
            }
            cachedEpoch = epoch;
        }
        return cached;
    }

    /// <summary>One pass over epoch 0 in batches (the last may be short), for inference and evaluation: with
    /// <c>shuffle: false</c> the ranks together see every index in order; drop entries flagged as padding.</summary>
    public IEnumerable<ShardEntry[]> OnePass(int batchSize)
    {
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize),
            $"batch size must be positive, got {batchSize}");
        return Shard(0).Chunk(batchSize).ToArray();
    }

    /// <summary>The order of epoch <paramref name="epoch"/>: Fisher-Yates (for i = n-1 down to 1, swap i with a
    /// uniform j in 0..i, drawn by <see cref="SplitMix64.NextBelow"/>) on 0..n-1, the generator seeded with
    /// <see cref="EpochSeed"/>(seed, epoch).</summary>
    public static int[] Permutation(int n, ulong seed, long epoch)
    {
        var order = Enumerable.Range(0, n).ToArray();
        var rng = new SplitMix64(EpochSeed(seed, epoch));
        for (int i = n - 1; i > 0; i--)
        {
            int j = (int)rng.NextBelow((ulong)i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    /// <summary>Mix(seed ^ Mix(epoch + golden ratio)): neighbouring epochs and seeds give unrelated streams.</summary>
    public static ulong EpochSeed(ulong seed, long epoch)
        => SplitMix64.Mix(seed ^ SplitMix64.Mix((ulong)epoch + 0x9E3779B97F4A7C15UL));
}
