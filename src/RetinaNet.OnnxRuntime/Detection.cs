namespace RetinaNet
{
    /// <summary>One detected object: its box in the original image's pixels (top-left corner, width, height), score,
    /// the model's class index, the category id and name (those of the model's training annotations when it knows them,
    /// else the class index and "class N"). A rotated model's box is turned by <see cref="Theta"/> radians
    /// anticlockwise on screen about its centre (ODTK's bbox [x, y, w, h, theta]); null for axis-aligned
    /// boxes.</summary>
    public sealed record Detection(float X, float Y, float Width, float Height, float Score, int Class, long CategoryId,
        string Name, float? Theta = null);
}

namespace RetinaNet.Model
{
    /// <summary>A category the model was trained on: its id and name in the training annotations.</summary>
    public sealed record Category(long Id, string Name);
}
