using RetinaNet.Data.Coco;
using RetinaNet.Evaluation;
using Xunit;

namespace RetinaNet.Tests.Evaluation;

/// <summary>Our evaluator against pycocotools' own numbers on the generated fixtures (crowds, area fields that differ
/// from the box, score ties, more than 100 detections per image, images and categories without objects, unrounded
/// float64 values and values at or 1e-9 around the IoU, area and score boundaries).</summary>
public class PycocotoolsFixtureTests
{
    // pycocotools works in float64 and so do we: only summation order may differ.
    const double Tolerance = 1e-9;

    public static TheoryData<string> Fixtures() => [.. EvalFixture.Names];
    public static TheoryData<string> SegmFixtures() => [.. EvalFixture.SegmNames];

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void StatsAndPerCategoryApMatchPycocotools(string name) => Check(name, "cocoeval", IouType.Bbox);

    /// <summary>The polygons are rasterised (pycocotools' RLE) and compared as masks: 1e-9 holds only when every
    /// pixel of every region comes out as pycocotools' does.</summary>
    [Theory]
    [MemberData(nameof(SegmFixtures))]
    public void SegmStatsOfRotatedBoxesMatchPycocotools(string name) => Check(name, "cocoeval-segm", IouType.Segm);

    static void Check(string name, string folder, IouType iouType)
    {
        var fixture = EvalFixture.Load(name, folder);
        var groundTruth = CocoFile.Load(fixture.GroundTruthPath);
        var detections = DetectionsFile.Read(fixture.DetectionsPath);
        DetectionsFile.Validate(detections, groundTruth, fixture.DetectionsPath);

        var result = CocoEvaluator.Evaluate(groundTruth, detections, iouType);

        Assert.Equal(12, result.Stats.Length);
        for (int i = 0; i < 12; i++)
            Assertions.Close(fixture.Stats[i], result.Stats[i], Tolerance, $"{name} {CocoEvalResult.StatNames[i]}");
        foreach (var (id, ap) in fixture.ApPerCategory)
        {
            var category = Assert.Single(result.PerCategory, c => c.CategoryId.ToString() == id);
            Assertions.Close(ap, category.Ap, Tolerance, $"{name} AP of category {id}");
            Assert.Equal(fixture.NonCrowdGts[category.CategoryId], category.GtCount);
        }
    }
}
