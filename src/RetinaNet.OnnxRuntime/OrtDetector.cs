using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using RetinaNet.Data;
using RetinaNet.Data.Imaging;
using RetinaNet.Model;

namespace RetinaNet.OnnxRuntime;

/// <summary>An exported detector (<c>retinanet export</c>, decode and NMS in the graph) run by ONNX Runtime, with no
/// libtorch: for applications that only deploy. Images are scaled by the model's own rule (<see cref="ImageScale"/>,
/// PIL's antialiased bilinear), placed at the top-left of the model's fixed input, and the boxes come back in the
/// original image's pixels with the category ids and names stored in the file.
/// <code>
/// using var detector = OrtDetector.Load("model.onnx");
/// foreach (var d in detector.Detect("street.jpg")) Console.WriteLine($"{d.Name} {d.Score:F2} at {d.X},{d.Y}");
/// </code>
/// Thread safety: every method may be called from any thread (ONNX Runtime's sessions run concurrent calls).</summary>
public sealed class OrtDetector : IDisposable
{
    readonly InferenceSession session;
    readonly int resize, maxSize;

    OrtDetector(InferenceSession session, int height, int width, int resize, int maxSize,
        IReadOnlyList<Category> categories) =>
        (this.session, InputSize, this.resize, this.maxSize, Categories) = (session, (height, width), resize, maxSize,
            categories);

    /// <summary>The model's fixed input (height, width); larger images are scaled down to fit.</summary>
    public (int Height, int Width) InputSize { get; }

    /// <summary>The training categories in class order ("class N" for files exported without them).</summary>
    public IReadOnlyList<Category> Categories { get; }

    /// <summary>Opens an exported model; <paramref name="options"/> choose ONNX Runtime's providers and threads
    /// (default: the CPU). One clear line when the file is not a detector exported by <c>retinanet
    /// export</c>.</summary>
    public static OrtDetector Load(string path, SessionOptions? options = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such model file", path);
        InferenceSession session;
        try { session = options is null ? new InferenceSession(path) : new InferenceSession(path, options); }
        catch (OnnxRuntimeException e) { throw new InvalidDataException($"{path}: ONNX Runtime cannot load it: "
            + $"{e.Message.Split('\n')[0]}"); }
        try
        {
            var images = session.InputMetadata.GetValueOrDefault(ExportedFile.Images);
            var file = ExportedFile.Describe(path, session.ModelMetadata.CustomMetadataMap,
                images?.Dimensions.Select(d => (long)d).ToList());
            var categories = file.Categories.Count != 0 ? file.Categories
                : Enumerable.Range(0, file.Classes).Select(c => new Category(c, $"class {c}")).ToList();
            // older exports lack the scale: ODTK's defaults
            return new OrtDetector(session, file.Height, file.Width, file.Resize ?? 800, file.MaxSize ?? 1333,
                categories);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    public IReadOnlyList<Detection> Detect(string imagePath) => Detect([ImageDecoder.Decode(imagePath)])[0];

    public IReadOnlyList<Detection> Detect(byte[] encodedImage)
        => Detect([ImageDecoder.Decode(encodedImage, "image")])[0];

    public IReadOnlyList<Detection> Detect(Stream encodedImage)
    {
        using var copy = new MemoryStream();
        encodedImage.CopyTo(copy);
        return Detect(copy.ToArray());
    }

    /// <summary>Detections of several decoded images, one model call for all of them.</summary>
    public IReadOnlyList<IReadOnlyList<Detection>> Detect(IReadOnlyList<RgbImage> images)
    {
        if (images.Count == 0) return [];
        var (h, w) = InputSize;
        var pixels = new DenseTensor<byte>([images.Count, 3, h, w]);
        var sizes = new DenseTensor<long>([images.Count, 2]);
        var ratios = new double[images.Count];
        var buffer = pixels.Buffer.Span;
        for (int b = 0; b < images.Count; b++)
        {
            var image = images[b];
            ratios[b] = ImageScale.Ratio(image.Width, image.Height, resize, maxSize, InputSize);
            int width = ImageScale.Scaled(image.Width, ratios[b]), height = ImageScale.Scaled(image.Height, ratios[b]);
            var scaled = width == image.Width && height == image.Height ? image
                : AntialiasedResize.Bilinear(image, width, height);
            // HWC to the input's CHW, at the top-left of the padded input
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                    for (int c = 0; c < 3; c++)
                        buffer[((b * 3 + c) * h + y) * w + x] = scaled.Pixels[(y * width + x) * 3 + c];
            (sizes[b, 0], sizes[b, 1]) = (height, width);
        }
        using var outputs = session.Run([NamedOnnxValue.CreateFromTensor(ExportedFile.Images, pixels),
            NamedOnnxValue.CreateFromTensor(ExportedFile.ImageSizes, sizes)],
                [ExportedFile.Boxes, ExportedFile.Scores, ExportedFile.Classes]);
        var boxes = outputs.Single(o => o.Name == ExportedFile.Boxes).AsTensor<float>();
        var scores = outputs.Single(o => o.Name == ExportedFile.Scores).AsTensor<float>();
        var classes = outputs.Single(o => o.Name == ExportedFile.Classes).AsTensor<long>();
        var result = new List<IReadOnlyList<Detection>>(images.Count);
        Span<float> corners = stackalloc float[4];
        for (int b = 0; b < images.Count; b++)
        {
            var found = new List<Detection>();
            for (int j = 0; j < scores.Dimensions[1]; j++)
            {
                for (int i = 0; i < 4; i++) corners[i] = boxes[b, j, i];
                if (scores[b, j] <= 0
                    || ImageScale.ToOriginal(corners, ratios[b], (images[b].Width, images[b].Height)) is not var (x, y,
                    bw, bh))
                    continue;
                int c = (int)classes[b, j];
                found.Add(new Detection(x, y, bw, bh, scores[b, j], c, Categories[c].Id, Categories[c].Name));
            }
            result.Add(found);
        }
        return result;
    }

    public void Dispose() => session.Dispose();
}
