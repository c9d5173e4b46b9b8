namespace RetinaNet.Serving;

/// <summary>One detection as the API returns it: box as [x, y, width, height] in the image's pixels (COCO's
/// convention), category id and name from the model's training annotations.</summary>
public sealed record DetectionJson(long CategoryId, string Name, float Score, float[] Box);

/// <summary>The detections of one image, with the size the boxes refer to (after EXIF orientation).</summary>
public sealed record ImageJson(string? File, int Width, int Height, IReadOnlyList<DetectionJson> Detections);

/// <summary>The answer of <c>POST /v1/detect/batch</c>: one entry per uploaded file, in order.</summary>
public sealed record BatchJson(IReadOnlyList<ImageJson> Results);

/// <summary>Every error answer: one line saying what was wrong and what to send instead.</summary>
public sealed record ErrorJson(string Error);

/// <summary>A request that cannot be served, with the status code that says why.</summary>
sealed class RequestException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}
