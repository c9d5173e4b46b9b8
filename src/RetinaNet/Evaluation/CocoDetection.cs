namespace RetinaNet.Evaluation;

/// <summary>One detection in COCO results form: box as [x, y, width, height] in pixels, and its score.</summary>
public readonly record struct CocoDetection(long ImageId, long CategoryId, float X, float Y, float W, float H, float Score);
