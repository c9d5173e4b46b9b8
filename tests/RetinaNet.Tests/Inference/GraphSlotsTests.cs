using RetinaNet.Inference;
using Xunit;
using static RetinaNet.Inference.GraphSlots.Decision;

namespace RetinaNet.Tests.Inference;

/// <summary>The CUDA-graph slot policy against sequences worked out by hand.</summary>
public class GraphSlotsTests
{
    static string Run(GraphSlots slots, string shapes) => string.Join(" ", shapes.Split(' ').Select(s =>
    {
        var d = slots.Next(s, out var evict);
        return d == Capture && evict is not null ? $"C-{evict}" : d.ToString()[..1];
    }));

    [Fact]
    public void FreeSlotsCaptureAtOnceThenReplay() =>
        Assert.Equal("C C R R C", Run(new(3), "a b a b c"));

    [Fact]
    public void WhenFullAShapeThatComesTwiceInARowTakesTheLeastRecentlyUsedSlot() =>
        // a b full; c once: eager; c again: replaces a (b was used later); a now eager once, then replaces b
        Assert.Equal("C C R E C-a R E C-b R", Run(new(2), "a b b c c c a a a"));

    [Fact]
    public void AlternatingShapesPastTheCapacityRunEagerlyInsteadOfRecapturing() =>
        Assert.Equal("C E E E E E", Run(new(1), "a b c b c b"));

    [Fact]
    public void AReplayBetweenTwoMissesBreaksTheRun() =>
        // b, then a (replayed), then b: not twice in a row
        Assert.Equal("C E R E C-a", Run(new(1), "a b a b b"));

    [Fact]
    public void AFailedCaptureLeavesTheSlotFree()
    {
        var slots = new GraphSlots(1);
        Assert.Equal(Capture, slots.Next("a", out _));
        slots.Forget("a");
        Assert.Equal("C R", Run(slots, "b b"));
    }
}
