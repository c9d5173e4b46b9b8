namespace RetinaNet.Data.Coco;

/// <summary>One detection in COCO results form: box as [x, y, width, height] in pixels, and its score. Doubles, as
/// pycocotools holds them: a results file is evaluated exactly as written (model outputs widen exactly).</summary>
public readonly record struct CocoDetection(long ImageId, long CategoryId, double X, double Y, double W, double H,
    double Score);
