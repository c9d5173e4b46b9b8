using RetinaNet.Data.Imaging;
using RetinaNet.Data.Transforms;
using TorchSharp;

namespace RetinaNet.Data.Loading;

/// <summary>How a loader runs: threads (0: <see cref="DefaultWorkers"/>), batches kept ahead, the seed of all
/// augmentation, whether bad images are reported and skipped instead of stopping the run, and whether batches go to a
/// GPU (then pinned).</summary>
public sealed record LoaderOptions(int Workers, int Prefetch, long Seed, bool SkipBadImages, bool Pin,
    int Stride = Model.Fpn.Stride)
{
    /// <summary>Decode JPEGs with nvJPEG on this GPU and run the transforms there (<c>--with-dali</c>); null:
    /// CPU.</summary>
    public TorchSharp.torch.Device? DecodeDevice { get; init; }

    /// <summary>Pad every batch to this (height, width) instead of its largest image rounded up to the stride: models
    /// exported with a fixed input size.</summary>
    public (int Height, int Width)? Canvas { get; init; }

    /// <summary>This process's rank and the number of ranks of a multi-process job: augmentation is seeded by an
    /// image's place in the global batch, the same whatever the number of processes.</summary>
    public (int Rank, int Ranks) Shard { get; init; } = (0, 1);

    /// <summary>The GPU that worker threads make current (a rank of a multi-GPU job): pinned buffers and nvJPEG then
    /// work on the rank's GPU, not on GPU 0. Null: leave the threads' device alone.</summary>
    public int? WorkerCudaDevice { get; init; }

    /// <summary>Batches carry rotated boxes' angles (<see cref="HostBatch"/>'s 6-column targets).</summary>
    public bool Rotated { get; init; }

    public static int DefaultWorkers => Math.Clamp(Environment.ProcessorCount - 1, 1, 12);
}

/// <summary>Builds the prefetching loader of a detection dataset: decode, boxes clipped to the decoded size,
/// the transform chain, collation. Training and inference differ only in the transforms and the plan.</summary>
public static class DetectionLoader
{
    public static PrefetchingLoader Create(DetectionDataset dataset, IImageTransform transform, Func<BatchPlan?> plan,
        LoaderOptions options,
        TextWriter warnings, long firstBatchNumber = 0)
    {
        // Feeding a GPU, the CPU does only loading: one libtorch thread per worker instead of every worker's resize
        // asking the process-wide pool for all cores (936 vs 728 im/s on 16 cores, bench/RESULTS.md).
        if (options.Pin) TorchSharp.torch.set_num_threads(1);
        return new(
            (index, random)
                => Load(dataset[index], transform, random, options.SkipBadImages, options.DecodeDevice, warnings),
            (images, padding, canvas) => HostBatch.Collate(images, padding, options.Stride, options.Pin,
                options.Canvas, options.Rotated, atLeast: canvas),
            plan, options.Workers > 0 ? options.Workers : LoaderOptions.DefaultWorkers, options.Prefetch, options.Seed,
                firstBatchNumber,
            options.Shard, options.WorkerCudaDevice is int gpu ? () => Native.CudaDevice.SetCurrent(gpu) : null);
    }

    /// <summary>Plan of endless training batches from a sampler (the sampler state after each batch rides
    /// along).</summary>
    public static Func<BatchPlan?> Training(ShardedSampler sampler, int batchSize) => () =>
    {
        var indices = sampler.NextBatch(batchSize);
        return new BatchPlan(indices, new bool[indices.Length], sampler.State);
    };

    /// <summary>Plan of one in-order pass (inference, validation); entries repeated to even out shards are
    /// marked.</summary>
    public static Func<BatchPlan?> OnePass(ShardedSampler sampler, int batchSize)
        => InTurn(sampler.OnePass(batchSize).Select(b => BatchPlan.Of(b)));

    static Func<BatchPlan?> InTurn(IEnumerable<BatchPlan> plans)
    {
        var batches = plans.GetEnumerator();
        return () => batches.MoveNext() ? batches.Current : null;
    }

    /// <summary>One pass as <see cref="OnePass"/>, the shard's images batched by the padded shape of their resized
    /// image (<paramref name="shape"/>; null: unknown) as <see cref="ShapeBatches"/> plans them (a new input shape
    /// costing <paramref name="newShapePixels"/>). Batches leave dataset order; the caller puts results back in
    /// it.</summary>
    public static Func<BatchPlan?> OnePassByShape(ShardedSampler sampler, int batchSize,
        Func<int, (int Height, int Width)?> shape, long newShapePixels = 0)
        => InTurn(ShapeBatches.Plan([.. sampler.OnePass(batchSize).SelectMany(b => b)], batchSize, shape,
            newShapePixels));

    /// <summary>The (height, width) an image is padded to after resizing to <paramref name="size"/> (at most
    /// <paramref name="maxSize"/>): from the sample's size when its annotations give one, else the size the decoder
    /// will give, read from the file's headers; null when they cannot be read (decoding reports the file).</summary>
    public static (int Height, int Width)? PaddedShape(Sample sample, int size, int maxSize, int stride)
    {
        int width, height;
        if (sample is { Width: int w, Height: int h }) (width, height) = (w, h);
        else
            try { (width, height) = ImageDecoder.ReadSize(sample.Path); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) // BadInputException too
            {
                return null;
            }
        if (width <= 0 || height <= 0) return null;
        double ratio = OnnxRuntime.ImageScale.Ratio(width, height, size, maxSize);
        return (HostBatch.RoundUp(OnnxRuntime.ImageScale.Scaled(height, ratio), stride),
            HostBatch.RoundUp(OnnxRuntime.ImageScale.Scaled(width, ratio), stride));
    }

    static PreparedImage? Load(Sample sample, IImageTransform transform, Random random, bool skipBad,
        TorchSharp.torch.Device? gpu, TextWriter warnings)
    {
        TorchSharp.torch.Tensor pixels;
        try { pixels = Decode(sample.Path, gpu); }
        catch (BadInputException e) when (skipBad)
        {
            lock (warnings) warnings.WriteLine($"warning: skipped {e.Message}");
            return null;
        }
        int width = (int)pixels.shape[2], height = (int)pixels.shape[1];
        var image = new ImageWithBoxes(pixels, (float[])sample.Boxes.Clone(), (int[])sample.Classes.Clone(),
            (float[]?)sample.Angles?.Clone());
        try
        {
            image.ClipBoxes();
            transform.Apply(image, random);
            return new PreparedImage(sample.Index, sample.ImageId, image, width, height);
        }
        catch
        {
            image.Dispose();
            throw;
        }
    }

    /// <summary>uint8 [3, H, W]: on the CPU, or with nvJPEG on the GPU (other formats decode on the CPU and
    /// move).</summary>
    static TorchSharp.torch.Tensor Decode(string path, TorchSharp.torch.Device? gpu)
    {
        if (gpu is null) return ImageDecoder.Decode(path).ToTensor();
        var data = ImageDecoder.ReadAll(path);
        TorchSharp.torch.Tensor? onGpu;
        try { onGpu = Native.NvJpeg.Decode(data, gpu); }
        catch (InvalidDataException e)
        {
            throw new BadInputException(path, $"{e.Message}; re-export the image or pass --skip-bad-images");
        }
        if (onGpu is not null) return onGpu;
        using var cpu = ImageDecoder.Decode(data, path).ToTensor();
        return cpu.to(gpu);
    }
}
