namespace RetinaNet.Data;

/// <summary>One image of a <see cref="DetectionDataset"/> with its objects, in original image pixels.
/// <para><c>Boxes</c> holds x1, y1, x2, y2 per object in continuous pixel coordinates: the image spans [0, Width] x [0,
/// Height], a box covering pixel columns 0..9 is x1 = 0, x2 = 10 (no +1 anywhere; COCO's [x, y, w, h] maps to x1 = x,
/// x2 = x + w). <c>Classes</c> holds the contiguous class index of each box (<see cref="Coco.CategoryMap"/>), or
/// <see cref="Crowd"/> for a crowd region that training ignores rather than learns.</para><para>Rotated boxes (ODTK's
/// <c>--rotated-bbox</c>) add <c>Angles</c>, one theta per box: the box is then x1, y1, x2, y2 before turning about its
/// centre, and it is never clipped (cutting the unturned box would move the turned one).</para></summary>
public sealed record Sample(int Index, long ImageId, string Path, int? Width, int? Height, float[] Boxes, int[] Classes,
    float[]? Angles = null)
{
    /// <summary>Class value of a COCO <c>iscrowd</c> region: anchors over it are neither positive nor
    /// negative.</summary>
    public const int Crowd = -2;

    public int Count => Classes.Length;

    /// <summary>The sample with its image size set and its boxes clipped to [0, width] x [0, height]; boxes left
    /// with zero or negative width or height are dropped (for when the decoder learns the size).</summary>
    public Sample ClipTo(int width, int height) => ClipTo(width, height, out _);

    public Sample ClipTo(int width, int height, out int dropped)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width),
            $"image size must be positive, got {width}x{height}");
        var (boxes, classes, angles) = Clip(Boxes, Classes, Angles, width, height);
        dropped = Count - classes.Length;
        return this with { Width = width, Height = height, Boxes = boxes, Classes = classes, Angles = angles };
    }

    /// <summary>Axis-aligned boxes clipped to [0, width] x [0, height], rotated ones kept as they are; either dropped
    /// when left with no width or height.</summary>
    internal static (float[] Boxes, int[] Classes, float[]? Angles) Clip(float[] boxes, int[] classes, float[]? angles,
        float width, float height)
    {
        var keptBoxes = new List<float>(boxes.Length);
        var keptClasses = new List<int>(classes.Length);
        var keptAngles = new List<float>(angles is null ? 0 : classes.Length);
        for (int i = 0; i < classes.Length; i++)
        {
            float x1 = boxes[4 * i], y1 = boxes[4 * i + 1], x2 = boxes[4 * i + 2], y2 = boxes[4 * i + 3];
            if (angles is null)
                (x1, y1, x2, y2) = (Math.Clamp(x1, 0, width), Math.Clamp(y1, 0, height), Math.Clamp(x2, 0, width),
                    Math.Clamp(y2, 0, height));
            if (!(x2 > x1 && y2 > y1)) continue;
            keptBoxes.AddRange([x1, y1, x2, y2]);
            keptClasses.Add(classes[i]);
            if (angles is not null) keptAngles.Add(angles[i]);
        }
        return (keptBoxes.ToArray(), keptClasses.ToArray(), angles is null ? null : keptAngles.ToArray());
    }
}
