using RetinaNet.Data.Loading;
using Xunit;

namespace RetinaNet.Tests.Data;

public class ShardedSamplerTests
{
    [Fact]
    public void SplitMix64MatchesTheReferenceVector()
    {
        // splitmix64.c (Vigna) seeded with 1234567: its first five outputs, as published with the reference code.
        var rng = new SplitMix64(1234567);
        ulong[] expected = [6457827717110365317, 3203168211198807973, 9817491932198370423, 4593380528125082431,
            16408922859458223821];
        Assert.Equal(expected, Enumerable.Range(0, 5).Select(_ => rng.Next()));
    }

    [Fact]
    public void PermutationMatchesAnIndependentImplementation()
    {
        // From a separate Python implementation of the documented algorithm (SplitMix64, Lemire bounded draws,
        // Fisher-Yates from the top, epoch seed = Mix(seed ^ Mix(epoch + 0x9E3779B97F4A7C15))).
        Assert.Equal(5006236285904387910UL, ShardedSampler.EpochSeed(42, 0));
        Assert.Equal([5, 1, 4, 8, 6, 3, 9, 2, 0, 7], ShardedSampler.Permutation(10, 42, 0));
        Assert.Equal([9, 8, 6, 1, 3, 5, 0, 4, 7, 2], ShardedSampler.Permutation(10, 42, 1));
        Assert.Equal([3, 1, 8, 2, 6, 7, 0, 9, 5, 4], ShardedSampler.Permutation(10, 7, 0));
    }

    [Fact]
    public void SameSeedSameOrderOtherEpochOtherOrder()
    {
        var a = new ShardedSampler(1000, seed: 3);
        var b = new ShardedSampler(1000, seed: 3);
        Assert.Equal(a.NextBatch(1000), b.NextBatch(1000));
        var epoch0 = new ShardedSampler(1000, seed: 3).NextBatch(1000);
        var epoch1 = a.NextBatch(1000); // a is now in epoch 1
        Assert.Equal(1, a.State.Epoch);
        Assert.NotEqual(epoch0, epoch1);
        Assert.Equal(Enumerable.Range(0, 1000), epoch1.Order()); // still a permutation
        Assert.NotEqual(epoch0, new ShardedSampler(1000, seed: 4).NextBatch(1000));
    }

    [Fact]
    public void UnshuffledShardsFollowTorchDistributedSampler()
    {
        // n = 5, W = 2: padded order 0 1 2 3 4 0; rank 0 takes positions 0 2 4, rank 1 takes 1 3 5 (5 is padding).
        Assert.Equal([new(0, false), new(2, false), new(4, false)],
            new ShardedSampler(5, 0, 2, shuffle: false).Shard(0));
        Assert.Equal([new(1, false), new(3, false), new ShardEntry(0, true)],
            new ShardedSampler(5, 1, 2, shuffle: false).Shard(0));
        // n = 2, W = 4: padding wraps more than once: 0 1 0 1.
        Assert.Equal([new ShardEntry(1, true)], new ShardedSampler(2, 3, 4, shuffle: false).Shard(0));
    }

    [Theory]
    [InlineData(1)] [InlineData(2)] [InlineData(5)] [InlineData(7)] [InlineData(10)] [InlineData(13)]
    public void ShardsAreDisjointAndCoverEveryIndex(int n)
    {
        foreach (bool shuffle in new[] { true, false })
            for (int world = 1; world <= 4; world++)
                for (long epoch = 0; epoch < 3; epoch++)
                {
                    var shards = Enumerable.Range(0, world)
                        .Select(r => new ShardedSampler(n, r, world, shuffle, seed: 11).Shard(epoch)).ToArray();
                    int size = (n + world - 1) / world;
                    Assert.All(shards, s => Assert.Equal(size, s.Count));
                    var real = shards.SelectMany(s => s.Where(e => !e.IsPadding).Select(e => e.Index)).Order();
                    Assert.Equal(Enumerable.Range(0, n), real); // each index exactly once
                    Assert.Equal(size * world - n, shards.Sum(s => s.Count(e => e.IsPadding)));
                }
    }

    [Fact]
    public void NextBatchWalksTheShardAcrossEpochs()
    {
        var s = new ShardedSampler(5, 1, 2, shuffle: false); // shard: 1 3 0 per epoch
        Assert.Equal([1, 3], s.NextBatch(2));
        Assert.Equal(new SamplerState(0, 2), s.State);
        Assert.Equal([0, 1, 3, 0, 1], s.NextBatch(5)); // crosses into epoch 1 and 2
        Assert.Equal(new SamplerState(2, 1), s.State);
    }

    [Fact]
    public void ResumeMidEpochContinuesIdentically()
    {
        var uninterrupted = new ShardedSampler(23, 2, 3, seed: 99);
        var expected = Enumerable.Range(0, 20).Select(_ => uninterrupted.NextBatch(4)).ToArray();

        var first = new ShardedSampler(23, 2, 3, seed: 99);
        for (int i = 0; i < 5; i++) Assert.Equal(expected[i], first.NextBatch(4));
        var saved = first.State;
        Assert.Equal(new SamplerState(2, 4), saved); // 20 entries of an 8-entry shard: epoch 2, position 4

        var resumed = new ShardedSampler(23, 2, 3, seed: 99);
        resumed.Restore(saved);
        for (int i = 5; i < 20; i++) Assert.Equal(expected[i], resumed.NextBatch(4));
    }

    [Fact]
    public void OnePassCoversTheShardOnceInOrder()
    {
        var batches = new ShardedSampler(5, 1, 2, shuffle: false).OnePass(2).ToArray();
        Assert.Equal(2, batches.Length);
        Assert.Equal([new(1, false), new(3, false)], batches[0]);
        Assert.Equal([new ShardEntry(0, true)], batches[1]);
    }

    [Fact]
    public void RejectsBadArguments()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ShardedSampler(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ShardedSampler(5, 2, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ShardedSampler(5).NextBatch(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ShardedSampler(5, 0, 2).Restore(new SamplerState(0, 4)));
    }
}
