using System.Text.Json;
using RetinaNet.Export.Quantization;
using Xunit;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Export;

/// <summary>Collectors and thresholds against tests/fixtures/make_calibration_fixtures.py (numpy, brute force) and
/// hand-computed histograms.</summary>
public class RangeCollectorTests
{
    static readonly JsonElement Fixture = JsonDocument.Parse(
        File.ReadAllText(Paths.Fixture("calibration", "calibration.json"))).RootElement;

    static float[][] Batches()
    {
        var bytes = File.ReadAllBytes(Paths.Fixture("calibration", "batches.bin"));
        var all = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, all, 0, bytes.Length);
        var result = new List<float[]>();
        int offset = 0;
        foreach (var size in Fixture.GetProperty("batch_sizes").EnumerateArray().Select(e => e.GetInt32()))
        {
            result.Add(all[offset..(offset + size)]);
            offset += size;
        }
        return [.. result];
    }

    /// <summary>Feeds the fixture batches as 4-D activations [1, 1, 128, n/128], as a
    /// convolution input arrives.</summary>
    static void Feed(Action<Tensor> observe, Device? device = null)
    {
        foreach (var batch in Batches())
        {
            using var t = tensor(batch, [1, 1, 128, batch.Length / 128], device: device ?? CPU);
            observe(t);
        }
    }

    static AbsHistogram FixtureHistogram(JsonElement e) => new(
        e.GetProperty("counts").EnumerateArray().Select(c => c.GetDouble()).ToArray(),
        e.GetProperty("bin_width").GetDouble());

    [Fact]
    public void MinMaxIsTheLargestMagnitudeOverAllBatches()
    {
        using var collector = new MaxCollector();
        Feed(collector.Observe);
        Assert.Equal(Fixture.GetProperty("max_abs").GetDouble(), collector.Amax());
    }

    [Fact]
    public void HistogramGrowsByPowersOfTwoAndMatchesTheNumpyReferenceExactly()
    {
        using var collector = new HistogramCollector();
        Feed(collector.Observe);
        var actual = collector.Result();
        var expected = FixtureHistogram(Fixture.GetProperty("histogram"));
        Assert.Equal(expected.BinWidth, actual.BinWidth);
        Assert.Equal(expected.Counts, actual.Counts);
        Assert.Equal(Batches().Sum(b => b.Length), actual.Total);
    }

    [GpuFact]
    public void OnTheGpuHistogramAndMaxMatchTheReferenceExactly()
    {
        using var histogram = new HistogramCollector();
        using var max = new MaxCollector();
        Feed(t => { histogram.Observe(t); max.Observe(t); }, CUDA);
        var expected = FixtureHistogram(Fixture.GetProperty("histogram"));
        Assert.Equal(expected.BinWidth, histogram.Result().BinWidth);
        Assert.Equal(expected.Counts, histogram.Result().Counts);
        Assert.Equal(Fixture.GetProperty("max_abs").GetDouble(), max.Amax());
    }

    [Fact]
    public void HistogramOfAFirstBatchOfZerosStillGrowsToLaterValues()
    {
        using var collector = new HistogramCollector(bins: 8);
        using (var zero = zeros(1, 4)) collector.Observe(zero);
        using (var later = tensor(new float[] { 0.5f, -3f, 2.9f, 0 }, [1, 4])) collector.Observe(later);
        var h = collector.Result();
        // the range 1e-20 doubles 69 times to 5.903 (the first power of two past 3): bins of 0.7379
        Assertions.Close(1e-20f * Math.Pow(2, 69), h.Range, 1e-6, "range");
        Assert.Equal(6, h.Counts[0]); // five zeros and 0.5
        Assert.Equal(1, h.Counts[3]); // 2.9 / 0.7379 = 3.93
        Assert.Equal(1, h.Counts[4]); // 3 / 0.7379 = 4.07
        Assert.Equal(8, h.Total);
    }

    [Fact]
    public void PercentileIsWithinOneBinAboveNumpysInvertedCdfPercentile()
    {
        double binWidth = FixtureHistogram(Fixture.GetProperty("histogram")).BinWidth;
        foreach (var p in Fixture.GetProperty("percentiles").EnumerateArray())
        {
            double percentile = p.GetProperty("percentile").GetDouble(), exact = p.GetProperty("exact").GetDouble();
            using var collector = new CalibrationSettings(CalibrationMethod.Percentile, percentile).NewCollector();
            Feed(collector.Observe);
            double amax = collector.Amax();
            // exact: the smallest |x| with at least p% of the values at or below it; amax is the top of its bin
            Assert.True(amax >= exact && amax - exact <= binWidth,
                $"{percentile}%: amax {amax}, numpy {exact}, bin {binWidth}");
        }
    }

    [Fact]
    public void PercentileOnAHandComputedHistogram()
    {
        // counts 0, 3, 5, 2 (10 values), bins of 0.5: 50% = 5 values is reached inside bin 2 → its upper edge 1.5;
        // 30% = 3 values is reached exactly at the end of bin 1 → 1.0; 100% → the last non-empty bin's edge, 2.0.
        var h = new AbsHistogram([0, 3, 5, 2], 0.5);
        Assert.Equal(1.5, PercentileThreshold.Amax(h, 50));
        Assert.Equal(1.0, PercentileThreshold.Amax(h, 30));
        Assert.Equal(2.0, PercentileThreshold.Amax(h, 100));
        Assert.Throws<ArgumentOutOfRangeException>(() => PercentileThreshold.Amax(h, 0));
    }

    [Fact]
    public void EntropyMatchesABruteForceKlSearch()
    {
        foreach (var c in Fixture.GetProperty("entropy_cases").EnumerateArray())
        {
            double expected = c.GetProperty("amax").GetDouble();
            Assertions.Close(expected, EntropyThreshold.Amax(FixtureHistogram(c)), 1e-12 * expected,
                c.GetProperty("name").GetString()!);
        }
    }

    [Fact]
    public void EntropyOnAHandComputedHistogram()
    {
        // 2 levels, candidates from 2 bins; counts 0, 8, 8, 1 → bin 0 takes bin 1's count: 8, 8, 8, 1 (25 values).
        // i = 2: P = (8, 17)/25, Q = (8, 8)/16 → KL = .32 ln(.32/.5) + .68 ln(.68/.5) = 0.0663
        // i = 3: P = (8, 8, 9)/25, levels {0, 1}, {2}: Q = (8, 8, 8)/24 → KL = .64 ln(.96) + .36 ln(1.08) = 0.0016
        // i = 4: P = (8, 8, 8, 1)/25, levels {0, 1}, {2, 3}: Q = (8, 8, 4.5, 4.5)/25
        //   → KL = .32 ln(8/4.5) + .04 ln(1/4.5) = 0.124
        // → i = 3, amax = 3.5 bins of 0.25
        Assert.Equal(0.875, EntropyThreshold.Amax(new AbsHistogram([0, 8, 8, 1], 0.25), levels: 2, startBin: 2));
        // an empty bin inside the kept range whose level has no other count makes Q zero where P is not: i = 3 of
        // (2, 2, 0, 2) is infinite, and i = 4 reproduces P exactly (KL 0)
        Assert.Equal(4.5, EntropyThreshold.Amax(new AbsHistogram([6, 2, 0, 2], 1), levels: 2, startBin: 2));
    }

    [Fact]
    public void EntropyCollectorEndToEndOnTheFixtureBatches()
    {
        using var collector = new CalibrationSettings(CalibrationMethod.Entropy).NewCollector();
        Feed(collector.Observe);
        double expected = Fixture.GetProperty("entropy_cases")[0].GetProperty("amax").GetDouble();
        Assertions.Close(expected, collector.Amax(), 1e-12 * expected, "entropy amax");
    }

    [Fact]
    public void NanOrInfinityInAnyBatchIsReportedAtTheEnd()
    {
        foreach (var method in Enum.GetValues<CalibrationMethod>())
            foreach (var bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
            {
                using var collector = new CalibrationSettings(method).NewCollector();
                using (var good = tensor(new float[] { 1, -2, 3, 0 })) collector.Observe(good);
                using (var broken = tensor(new float[] { 1, bad, 5, 0 })) collector.Observe(broken);
                using (var good = tensor(new float[] { 0.5f, 4 })) collector.Observe(good);
                var e = Assert.Throws<InvalidDataException>(() => collector.Amax());
                Assert.Contains("NaN or infinite", e.Message);
            }
    }

    [Fact]
    public void CollectorsThatSawNothingSaySo()
    {
        foreach (var method in Enum.GetValues<CalibrationMethod>())
        {
            using var collector = new CalibrationSettings(method).NewCollector();
            Assert.Throws<InvalidOperationException>(() => collector.Amax());
        }
    }
}
