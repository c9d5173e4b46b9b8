using RetinaNet.Boxes;
using RetinaNet.Data.Coco;

namespace RetinaNet.Inference;

/// <summary>Detections in COCO results form: a rotated one as ODTK writes it, bbox [x, y, w, h, theta] and its 4
/// corners as the segmentation (our one turning convention, <see cref="RotatedRectangle.Corners"/>), which
/// <c>evaluate --iou-type segm</c> scores.</summary>
public static class CocoDetections
{
    /// <summary>Detection <paramref name="j"/> of an image, under <paramref name="category"/>.</summary>
    public static CocoDetection Of(ImageDetections image, int j, long category)
    {
        var d = new CocoDetection(image.ImageId, category, image.Boxes[4 * j], image.Boxes[4 * j + 1],
            image.Boxes[4 * j + 2],
            image.Boxes[4 * j + 3], image.Scores[j]);
        return image.Angles is { } angles ? Rotated(d, angles[j]) : d;
    }

    /// <summary>The detection as a rotated box turned by <paramref name="theta"/>, with its corners.</summary>
    public static CocoDetection Rotated(CocoDetection d, double theta) => d with
    {
        Theta = theta,
        Segmentation = CocoSegmentation.OfPolygons(new RotatedRectangle(d.X, d.Y, d.W, d.H, theta).Corners()),
    };
}
