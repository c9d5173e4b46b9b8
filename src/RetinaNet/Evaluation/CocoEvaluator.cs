using RetinaNet.Data.Coco;
using static RetinaNet.Evaluation.CocoEvalParams;

namespace RetinaNet.Evaluation;

/// <summary>COCO evaluation with pycocotools COCOeval's semantics and default parameters (IoU .50:.05:.95,
/// 101 recall points, areas all/small/medium/large from the gt <c>area</c> field, maxDets 1/10/100, crowd regions),
/// run over arrays with categories in parallel; IoU of boxes or, for <see cref="IouType.Segm"/>, of rasterised
/// regions (how rotated boxes are evaluated).</summary>
public static class CocoEvaluator
{
    /// <summary>Evaluates detections against the ground truth. Detections of categories not in the ground truth are
    /// left out (as COCOeval does); an image id not in the ground truth or a non-finite score is an
    /// <see cref="ArgumentException"/> (check files first with <see cref="DetectionsFile.Validate"/>).</summary>
    public static CocoEvalResult Evaluate(CocoFile groundTruth, IReadOnlyList<CocoDetection> detections,
        IouType iouType = IouType.Bbox)
    {
        var index = new EvalIndex(groundTruth, detections, iouType);
        int K = index.CategoryCount;
        var precision = new double[T * R * K * A * M];
        var recall = new double[T * K * A * M];
        Array.Fill(precision, -1.0);
        Array.Fill(recall, -1.0);
        Parallel.For(0, K, k => CategoryEvaluation.Run(index, k, precision, recall));

        var gtCounts = new int[K];
        for (int k = 0; k < K; k++)
            for (int j = index.GtStart[k]; j < index.GtStart[k + 1]; j++)
                if (!index.Gts[index.GtOrder[j]].IsCrowd) gtCounts[k]++;
        return new CocoEvalResult(index.Categories, precision, recall, gtCounts);
    }
}

/// <summary>What COCOeval's <c>iouType</c> compares: axis-aligned boxes, or regions (polygons, RLE) as masks.</summary>
public enum IouType { Bbox, Segm }
