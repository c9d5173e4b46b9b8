using RetinaNet.Data.Loading;
using RetinaNet.Data.Transforms;
using RetinaNet.Inference;
using RetinaNet.Model;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Inference;

/// <summary>Batches submitted ahead of their results (<see cref="DetectorExtensions.Run"/> with more than one in
/// flight): the same images in the same order as one at a time, never more batches outstanding than asked, each
/// batch alive until its results are collected and released after; on a GPU the runner's queued results equal its
/// direct ones.</summary>
public class BatchesInFlightTests
{
    /// <summary>A detector whose one detection per image is the image's id, counting its direct and submitted calls
    /// and how many submitted batches it holds.</summary>
    sealed class RecordingDetector : IDetector
    {
        public int Outstanding, MostOutstanding, Submitted, Detected;
        public int Classes => 1;
        public (int Height, int Width)? InputSize => null;
        public IReadOnlyList<Category> Categories => [];
        public InferenceConfig Settings => new();

        public IReadOnlyList<ImageDetections> Detect(HostBatch host)
        {
            Detected++;
            return Ids(host);
        }

        public PendingDetections Submit(HostBatch host)
        {
            Submitted++;
            MostOutstanding = Math.Max(MostOutstanding, ++Outstanding);
            return new PendingDetections(() =>
            {
                Assert.False(host.Pixels.IsInvalid, "a batch was released before its results were collected");
                Outstanding--;
                return Ids(host);
            });
        }

        static List<ImageDetections> Ids(HostBatch host) =>
            host.ImageIds.Select(id => new ImageDetections(id, [1f], [0, 0, 1, 1], [0])).ToList();

        public void Dispose() { }
    }

    static HostBatch Batch(long firstId, int count) => HostBatch.Collate(Enumerable.Range(0, count).Select(i =>
        new PreparedImage(i, firstId + i, new ImageWithBoxes(zeros(3, 8, 8, ScalarType.Byte), [], []), 8, 8))
        .ToList(), Enumerable.Repeat(false, count).ToList(), 8, pin: false);

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(9)]
    public void TheSameImagesInOrderWithAtMostThatManyBatchesOutstanding(int inFlight)
    {
        var batches = new List<HostBatch> { Batch(0, 3), Batch(3, 3), Batch(6, 2), Batch(8, 3), Batch(11, 1) };
        int handed = 0;
        var detector = new RecordingDetector();
        var ids = detector.Run(() => handed < batches.Count ? batches[handed++] : null, inFlight)
            .Select(d => d.ImageId).ToList();
        Assert.Equal(Enumerable.Range(0, 12).Select(i => (long)i), ids);
        Assert.Equal(5, detector.Submitted);
        Assert.Equal(0, detector.Detected);
        Assert.Equal(Math.Min(inFlight, batches.Count), detector.MostOutstanding);
        Assert.Equal(0, detector.Outstanding);
        Assert.All(batches, b => Assert.True(b.Pixels.IsInvalid, "a batch was not released"));
    }

    [Fact]
    public void ResultsOfTheFirstBatchComeBeforeTheLoaderIsAskedPastTheWindow()
    {
        var batches = new List<HostBatch> { Batch(0, 2), Batch(2, 2), Batch(4, 2), Batch(6, 2) };
        int handed = 0;
        var detector = new RecordingDetector();
        using var results = detector.Run(() => handed < batches.Count ? batches[handed++] : null, 2).GetEnumerator();
        Assert.True(results.MoveNext());
        Assert.Equal(0, results.Current.ImageId);
        Assert.Equal(2, handed); // the second batch is queued, the third not yet taken
        foreach (var b in batches) b.Dispose();
    }

    [Fact]
    public void AnAbandonedPassReleasesWhatIsStillQueued()
    {
        var batches = new List<HostBatch> { Batch(0, 1), Batch(1, 1), Batch(2, 1), Batch(3, 1) };
        int handed = 0;
        var detector = new RecordingDetector();
        var first = detector.Run(() => handed < batches.Count ? batches[handed++] : null, 3).First();
        Assert.Equal(0, first.ImageId);
        Assert.Equal(3, handed);
        Assert.All(batches.Take(3), b => Assert.True(b.Pixels.IsInvalid));
        batches[3].Dispose();
    }

    /// <summary>A checkpoint's detector (what infer and the library run) hands Submit to its runner: the
    /// interface's default would run every batch whole, and two in flight would be one at a time.</summary>
    [Fact]
    public void ACheckpointsDetectorSubmitsThroughItsRunner() =>
        Assert.Equal(typeof(CheckpointDetector),
            typeof(CheckpointDetector).GetMethod(nameof(IDetector.Submit), [typeof(HostBatch)])?.DeclaringType);

    /// <summary>The kernel options a run asks for reach a checkpoint's model (the bench's A/B of this session's
    /// levers goes through them); without any, the defaults.</summary>
    [Fact]
    public void ARunsKernelOptionsReachTheCheckpointsModel()
    {
        var path = Path.Combine(Paths.TempDir(), "m.pth");
        using (var model = new RetinaNetModel(new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 2 }))
            RetinaNet.Checkpoints.Checkpoint.Save(path, model);
        var asked = RetinaNet.Native.KernelOptions.Default with
        {
            FusedConvolutions = false, SharedCaptureStream = false, // both on by default
        };
        using (var detector = CheckpointDetector.Load(path, new ExecutionOptions(CPU) { Kernels = asked }, s => s))
            Assert.Equal(asked, detector.Kernels);
        using (var detector = CheckpointDetector.Load(path, new ExecutionOptions(CPU), s => s))
            Assert.Equal(RetinaNet.Native.KernelOptions.Default, detector.Kernels);
    }

    /// <summary>One at a time is the direct call, as before batches could be in flight: a detector's Submit is
    /// not used.</summary>
    [Fact]
    public void OneInFlightCallsDetect()
    {
        var batches = new List<HostBatch> { Batch(0, 2), Batch(2, 1) };
        int handed = 0;
        var detector = new RecordingDetector();
        var ids = detector.Run(() => handed < batches.Count ? batches[handed++] : null, 1).Select(d => d.ImageId);
        Assert.Equal([0L, 1, 2], ids);
        Assert.Equal(2, detector.Detected);
        Assert.Equal(0, detector.Submitted);
        Assert.All(batches, b => Assert.True(b.Pixels.IsInvalid, "a batch was not released"));
    }

    [Fact]
    public void AWindowBelowOneIsRefused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new RecordingDetector().Run(() => null, 0).ToList());

    /// <summary>The runner's GPU path: two batches queued (the second submitted before the first is collected), each
    /// collected result equal to the direct detection of the same batch.</summary>
    [GpuFact]
    public void OnTheGpuQueuedResultsEqualDirectOnes()
    {
        using var scope = NewDisposeScope();
        TorchSharp.torch.manual_seed(4);
        using var model = new RetinaNetModel(new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 3,
            Inference = new InferenceConfig { ScoreThreshold = 0 } });
        model.Initialize(4);
        model.to(CUDA).eval();
        using var runner = new DetectionRunner(model, CUDA, null);
        var g = new Generator(6);
        HostBatch Random(long id) => HostBatch.Collate(Enumerable.Range(0, 2).Select(i => new PreparedImage(i,
            id + i, new ImageWithBoxes(randint(0, 255, [3, 128, 192], generator: g).to(ScalarType.Byte), [], []),
            192, 128)).ToList(), [false, false], 128, pin: true);
        using var a = Random(0);
        using var b = Random(2);
        using var first = runner.Submit(a);
        using var second = runner.Submit(b);
        foreach (var (pending, host) in new[] { (first, a), (second, b) })
        {
            var queued = pending.Collect();
            var direct = runner.Detect(host);
            Assert.Equal(direct.Count, queued.Count);
            for (int i = 0; i < direct.Count; i++)
            {
                Assert.Equal(direct[i].ImageId, queued[i].ImageId);
                Assert.Equal(direct[i].Scores, queued[i].Scores);
                Assert.Equal(direct[i].Boxes, queued[i].Boxes);
                Assert.Equal(direct[i].Classes, queued[i].Classes);
            }
        }
    }
}
