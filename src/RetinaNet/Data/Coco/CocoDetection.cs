namespace RetinaNet.Data.Coco;

/// <summary>One detection in COCO results form: box as [x, y, width, height] in pixels, and its score. Doubles, as
/// pycocotools holds them: a results file is evaluated exactly as written (model outputs widen exactly). A rotated
/// detection adds the angle (<see cref="CocoAnnotation.Theta"/>'s convention) and its corners as a polygon.</summary>
public readonly record struct CocoDetection(long ImageId, long CategoryId, double X, double Y, double W, double H,
    double Score, double? Theta = null, CocoSegmentation? Segmentation = null);
