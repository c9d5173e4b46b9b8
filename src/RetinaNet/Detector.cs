using System.Runtime.CompilerServices;
using System.Threading.Channels;
using RetinaNet.Data;
using RetinaNet.Data.Imaging;
using RetinaNet.Data.Loading;
using RetinaNet.Data.Transforms;
using RetinaNet.Inference;
using RetinaNet.Model;
using SkiaSharp;

namespace RetinaNet;

/// <summary>How a <see cref="Detector"/> runs. Settings left null take the model's stored values (a checkpoint's
/// training resize and post-processing, an export's input scale), else the defaults.</summary>
public sealed record DetectorOptions
{
    /// <summary>cpu, cuda or cuda:N; null: a GPU when one is visible.</summary>
    public string? Device { get; init; }
    /// <summary>fp32 on a GPU instead of bf16 weights (checkpoints) or FP16 TensorRT (exports).</summary>
    public bool FullPrecision { get; init; }
    public bool CudaGraphs { get; init; }
    public double? ScoreThreshold { get; init; }
    public int? TopN { get; init; }
    public double? NmsThreshold { get; init; }
    public int? MaxDetections { get; init; }
    public int? Resize { get; init; }
    public int? MaxSize { get; init; }
    /// <summary>Images per batch of <see cref="Detector.DetectAsync"/>.</summary>
    public int Batch { get; init; } = 8;
    /// <summary>Decoding threads of <see cref="Detector.DetectAsync"/>; 0: one per core, up to 12.</summary>
    public int Workers { get; init; }

    internal InferenceConfig Apply(InferenceConfig stored) =>
        new InferenceOverrides(ScoreThreshold, TopN, NmsThreshold, MaxDetections, Resize, MaxSize).Apply(stored);
}

/// <summary>The detections of one image of a stream, with the image it came from.</summary>
public sealed record ImageResult(string Image, IReadOnlyList<Detection> Detections);

/// <summary>A RetinaNet detector for applications: a checkpoint (TorchSharp) or an exported model (ONNX Runtime)
/// behind one API.
/// <code>
/// using var detector = Detector.Load("model.pth");
/// foreach (var d in detector.Detect("street.jpg")) Console.WriteLine($"{d.Name} {d.Score:F2} at {d.X},{d.Y}");
/// </code>
/// Thread safety: every method may be called from any thread. The model runs on the detector's own thread, one call
/// at a time, so concurrent callers queue, and a result never depends on the calling thread (libtorch's CPU kernels
/// split work by the running thread's settings, and a different split changes the last bits).
/// <see cref="DetectAsync"/> decodes on worker threads and batches. A CPU training in the same process switches
/// libtorch's oneDNN off while it runs (its gradients are wrong), which changes the last bits of CPU
/// detections.</summary>
public sealed class Detector : IDisposable
{
    readonly IDetector model;
    readonly DetectorOptions options;
    readonly ExecutionOptions execution;
    readonly IImageTransform resize;
    readonly ModelThread thread = new("RetinaNet.Detector");

    Detector(IDetector model, DetectorOptions options, ExecutionOptions execution)
    {
        (this.model, this.options, this.execution) = (model, options, execution);
        resize = Augmentation.ForInference(model.Settings.Resize, model.Settings.MaxSize, model.InputSize);
        var known = model.Categories;
        Categories = Enumerable.Range(0, model.Classes)
            .Select(c => c < known.Count ? known[c] : new Category(c, $"class {c}")).ToArray();
    }

    /// <summary>Opens a checkpoint (.pth, .safetensors) or an exported model (.onnx, .plan, .engine).</summary>
    /// <exception cref="ArgumentException">Settings that do not fit the model (post-processing of an export is fixed
    /// in its graph) or an unknown device.</exception> <exception cref="IOException">A missing or unreadable model
    /// file.</exception>
    public static Detector Load(string path, DetectorOptions? options = null)
    {
        options ??= new DetectorOptions();
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: model file not found", path);
        if (options.Batch <= 0) throw new ArgumentException($"batch must be positive, got {options.Batch}");
        var device = DeviceNames.Parse(options.Device);
        var execution = new ExecutionOptions(device, options.FullPrecision, options.CudaGraphs, options.Batch);
        var model = ModelFiles.Open(path, execution, options.Apply, TextWriter.Null);
        return new Detector(model, options, execution);
    }

    /// <summary>Classes the model predicts.</summary>
    public int Classes => model.Classes;
    /// <summary>Each class's category (id and name), by class index: the training annotations' when the model file has
    /// them, else the class index and "class N".</summary>
    public IReadOnlyList<Category> Categories { get; }
    /// <summary>The input scale and post-processing in use.</summary>
    public InferenceConfig Settings => model.Settings;

    /// <summary>Detections in an image file (JPEG, PNG, BMP; EXIF orientation applied).</summary>
    public IReadOnlyList<Detection> Detect(string imagePath) => Detect(ImageDecoder.Decode(imagePath));

    /// <summary>Detections in an encoded image (the bytes of a JPEG, PNG or BMP file).</summary>
    public IReadOnlyList<Detection> Detect(byte[] encodedImage) => Detect(ImageDecoder.Decode(encodedImage, "image"));

    /// <summary>Detections in an encoded image read to its end from <paramref name="encodedImage"/>.</summary>
    public IReadOnlyList<Detection> Detect(Stream encodedImage)
    {
        using var buffer = new MemoryStream();
        encodedImage.CopyTo(buffer);
        return Detect(buffer.ToArray());
    }

    /// <summary>Detections in a decoded image (any colour type; alpha ignored).</summary>
    public IReadOnlyList<Detection> Detect(SKBitmap image) => Detect([image])[0];

    /// <summary>Detections in each decoded image, run as batches of up to <see cref="DetectorOptions.Batch"/> images
    /// (a server's concurrent requests: one model call for several images).</summary>
    public IReadOnlyList<IReadOnlyList<Detection>> Detect(IReadOnlyList<SKBitmap> images) =>
        Detect(images.Select(ToRgb).ToArray());

    static RgbImage ToRgb(SKBitmap image)
    {
        using var rgba = image.ColorType == SKColorType.Rgba8888 && image.RowBytes == 4 * image.Width ? null
            : image.Copy(SKColorType.Rgba8888)
                ?? throw new ArgumentException($"cannot convert a {image.ColorType} bitmap");
        return SkiaPixels.ToRgb(rgba ?? image);
    }

    IReadOnlyList<Detection> Detect(RgbImage image) => Detect([image])[0];

    /// <summary>Detections in each image decoded by <see cref="ImageDecoder"/>, as one model call when they fit in a
    /// batch (<see cref="DetectorOptions.Batch"/>; more are split).</summary>
    public IReadOnlyList<IReadOnlyList<Detection>> Detect(IReadOnlyList<RgbImage> images)
    {
        if (images.Count > options.Batch) return images.Chunk(options.Batch).SelectMany(Detect).ToArray();
        var entries = images.Select((image, i) =>
            new PreparedImage(i, i, new ImageWithBoxes(image.ToTensor(), [], []), image.Width, image.Height)).ToArray();
        try
        {
            return thread.Run(() =>
            {
                foreach (var entry in entries) resize.Apply(entry.Image, Random.Shared); // a fixed size: no randomness
                using var batch = HostBatch.Collate(entries, entries.Select(_ => false).ToArray(), Fpn.Stride,
                    pin: false,
                    model.InputSize);
                var detected = model.Detect(batch);
                return entries.Select(e => ToDetections(detected.Single(d => d.ImageId == e.ImageId))).ToArray();
            });
        }
        finally
        {
            foreach (var entry in entries) entry.Dispose();
        }
    }

    /// <summary>Detections in each image file, yielded in order as batches finish: files decode on worker threads
    /// while the model runs. A bad file stops the stream with a <see cref="BadInputException"/> naming it.</summary>
    public async IAsyncEnumerable<ImageResult> DetectAsync(IEnumerable<string> imagePaths,
        [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        var paths = imagePaths.ToList();
        if (paths.Count == 0) yield break;
        var results = Channel.CreateBounded<ImageResult>(Math.Max(1, options.Batch) * 2);
        var producer = thread.RunAsync(() =>
        {
            try
            {
                RunStream(paths, results.Writer, cancellation);
                results.Writer.Complete();
            }
            catch (Exception e) { results.Writer.Complete(e); }
            return true;
        });
        await foreach (var result in results.Reader.ReadAllAsync(cancellation)) yield return result;
        await producer;
    }

    void RunStream(List<string> paths, ChannelWriter<ImageResult> writer, CancellationToken cancellation)
    {
        var dataset = DetectionDataset.FromFiles(paths);
        var sampler = new ShardedSampler(dataset.Count, 0, 1, shuffle: false);
        var loaderOptions = InferenceJob.LoaderOptionsFor(execution.Device, options.Workers, model.InputSize);
        using var loader = DetectionLoader.Create(dataset, resize, DetectionLoader.OnePass(sampler, options.Batch),
            loaderOptions, TextWriter.Null);
        foreach (var image in model.Run(loader))
        {
            cancellation.ThrowIfCancellationRequested();
            var result = new ImageResult(paths[(int)image.ImageId], ToDetections(image));
            while (!writer.TryWrite(result)) writer.WaitToWriteAsync(cancellation).AsTask().GetAwaiter().GetResult();
        }
    }

    IReadOnlyList<Detection> ToDetections(ImageDetections image)
    {
        var result = new Detection[image.Count];
        for (int j = 0; j < image.Count; j++)
        {
            int c = image.Classes[j];
            var b = image.Boxes.AsSpan(4 * j, 4);
            result[j] = new Detection(b[0], b[1], b[2], b[3], image.Scores[j], c, Categories[c].Id, Categories[c].Name,
                image.Angles?[j]);
        }
        return result;
    }

    /// <summary>Waits for the calls queued so far, then frees the model.</summary>
    public void Dispose() => thread.Stop(model.Dispose);
}
