using RetinaNet.Data.Transforms;
using static TorchSharp.torch;

namespace RetinaNet.Data.Loading;

/// <summary>One image ready for batching: transformed pixels (CPU, uint8) and boxes, and what maps results
/// back.</summary>
public sealed record PreparedImage(int Index, long ImageId, ImageWithBoxes Image, int OriginalWidth,
    int OriginalHeight) : IDisposable
{
    public void Dispose() => Image.Dispose();
}

/// <summary>A batch assembled on the host by a loader worker, ready to be copied to the device. Layout: <c>Pixels</c>
/// uint8 [B, 3, H, W] with H and W the largest image's size rounded up to the stride, images at the top-left, zeros
/// elsewhere (pinned when bound for a GPU); <c>Targets</c> float [B, M, 5] rows of (x, y, w, h, class) in the resized
/// image's pixels, class −1 for padding rows and −2 for crowd regions (ODTK's layout, with crowd added; rotated
/// boxes: [B, M, 6] rows of (x, y, w, h, theta, class)); <c>Sizes</c> int64 [B, 2] each image's (height, width) before
/// padding; <c>Colors</c> float [B, 4] the colour jitter factors. <c>Scales</c> divide detections back to original
/// coordinates. <c>Padding</c> marks entries repeated only to fill the batch (inference drops their results).</summary>
public sealed class HostBatch : IDisposable
{
    public required Tensor Pixels { get; init; }
    public required Tensor Targets { get; init; }
    public required Tensor Sizes { get; init; }
    public required Tensor Colors { get; init; }
    public required int[] Indices { get; init; }
    public required long[] ImageIds { get; init; }
    public required double[] Scales { get; init; }
    /// <summary>Each image's (width, height) as decoded, before any transform.</summary>
    public required (int Width, int Height)[] OriginalSizes { get; init; }
    public required bool[] Padding { get; init; }
    /// <summary>The sampler's state after this batch: what a checkpoint saves to resume after it.</summary>
    public object? ResumeState { get; set; }
    public int Count => Indices.Length;
    public bool HasColor { get; init; }

    /// <param name="canvas">Fixed padded size (exported models); null: the largest image rounded up to
    /// <paramref name="stride"/>.</param>
    /// <param name="atLeast">Pad to at least this size (a shape the pass already ran), more where an image needs
    /// it.</param>
    public static HostBatch Collate(IReadOnlyList<PreparedImage> images, IReadOnlyList<bool> padding, int stride,
        bool pin,
        (int Height, int Width)? canvas = null, bool rotated = false, (int Height, int Width)? atLeast = null)
    {
        int n = images.Count;
        int h = RoundUp(images.Count == 0 ? stride : images.Max(i => i.Image.Height), stride);
        int w = RoundUp(images.Count == 0 ? stride : images.Max(i => i.Image.Width), stride);
        if (atLeast is var (ah, aw)) (h, w) = (Math.Max(h, RoundUp(ah, stride)), Math.Max(w, RoundUp(aw, stride)));
        if (canvas is var (ch, cw))
        {
            if (images.Any(i => i.Image.Height > ch || i.Image.Width > cw))
                throw new ArgumentException($"an image of the batch is larger than the model's fixed input {ch}x{cw}");
            (h, w) = (ch, cw);
        }
        int m = Math.Max(1, images.Count == 0 ? 1 : images.Max(i => i.Image.Count));
        using var scope = NewDisposeScope();
        var device = n > 0 ? images[0].Image.Pixels.device : CPU; // GPU-decoded batches are assembled on the GPU
        var pixels = zeros(n, 3, h, w, ScalarType.Byte, device);
        int columns = rotated ? 6 : 5;
        var targets = new float[n * m * columns];
        Array.Fill(targets, -1f);
        var sizes = new long[n * 2];
        var colors = new float[n * 4];
        for (int i = 0; i < n; i++)
        {
            var image = images[i].Image;
            pixels[i, .., ..image.Height, ..image.Width].copy_(image.Pixels);
            for (int k = 0; k < image.Count; k++)
            {
                int row = (i * m + k) * columns;
                float x1 = image.Boxes[4 * k], y1 = image.Boxes[4 * k + 1];
                (targets[row], targets[row + 1], targets[row + 2], targets[row + 3]) = (x1, y1, image.Boxes[4 * k + 2]
                    - x1, image.Boxes[4 * k + 3] - y1);
                if (rotated) targets[row + 4] = image.Angles?[k] ?? 0;
                targets[row + columns - 1] = image.Classes[k];
            }
            (sizes[2 * i], sizes[2 * i + 1]) = (image.Height, image.Width);
            var c = image.Color;
            (colors[4 * i], colors[4 * i + 1], colors[4 * i + 2], colors[4 * i + 3]) = (c.Brightness, c.Contrast,
                c.Saturation, c.Hue);
        }
        var batch = new HostBatch
        {
            // pinned, all of it: a non-blocking copy from pageable memory waits for the device's queue to drain
            Pixels = Pinned(pixels, pin && device.type == TorchSharp.DeviceType.CPU).MoveToOuterDisposeScope(),
            Targets = Pinned(tensor(targets, [n, m, columns]), pin).MoveToOuterDisposeScope(),
            Sizes = Pinned(tensor(sizes, [n, 2]), pin).MoveToOuterDisposeScope(),
            Colors = Pinned(tensor(colors, [n, 4]), pin).MoveToOuterDisposeScope(),
            Indices = images.Select(i => i.Index).ToArray(),
            ImageIds = images.Select(i => i.ImageId).ToArray(),
            Scales = images.Select(i => i.Image.Scale).ToArray(),
            OriginalSizes = images.Select(i => (i.OriginalWidth, i.OriginalHeight)).ToArray(),
            Padding = [.. padding],
            HasColor = images.Any(i => i.Image.Color != ColorFactors.Identity),
        };
        return batch;
    }

    static Tensor Pinned(Tensor t, bool pin) => pin ? t.pin_memory() : t;

    internal static int RoundUp(int x, int stride) => (x + stride - 1) / stride * stride;

    public void Dispose() { Pixels.Dispose(); Targets.Dispose(); Sizes.Dispose(); Colors.Dispose(); }
}

/// <summary>A batch on the device as the model takes it: <c>Images</c> float [B, 3, H, W] normalised with the
/// ImageNet mean and std (RGB), zero on the padding; <c>Targets</c> as in <see cref="HostBatch"/>.</summary>
public sealed class DeviceBatch : IDisposable
{
    public static readonly float[] Mean = [0.485f, 0.456f, 0.406f];
    public static readonly float[] Std = [0.229f, 0.224f, 0.225f];

    public required Tensor Images { get; init; }
    public required Tensor Targets { get; init; }
    public required HostBatch Host { get; init; }

    /// <summary>Copies (non-blocking from pinned memory) and finishes the batch on the device: to float in [0, 1],
    /// colour jitter when any image has it, normalise, zero the padding. The host batch stays owned by the
    /// caller.</summary>
    public static DeviceBatch From(HostBatch host, Device device)
    {
        using var scope = NewDisposeScope();
        var pixels = host.Pixels.to(device, non_blocking: true);
        long b = pixels.shape[0], h = pixels.shape[2], w = pixels.shape[3];
        var images = pixels.to(ScalarType.Float32).div_(Of(255));
        var sizes = host.Sizes.to(device, non_blocking: true);
        var valid = (Arange(h, device: device).view(1, 1, h, 1) < sizes[.., 0].view(b, 1, 1, 1))
            .logical_and(Arange(w, device: device).view(1, 1, 1, w) < sizes[.., 1].view(b, 1, 1, 1))
            .to(ScalarType.Float32);
        if (host.HasColor) ColorJitter.ApplyBatch(images, host.Colors.to(device, non_blocking: true), valid);
        var mean = DeviceConstants.Get("imagenet-mean", device, () => tensor(Mean, [1, 3, 1, 1]));
        var std = DeviceConstants.Get("imagenet-std", device, () => tensor(Std, [1, 3, 1, 1]));
        images.sub_(mean).div_(std).mul_(valid);
        return new DeviceBatch
        {
            Images = images.MoveToOuterDisposeScope(),
            Targets = host.Targets.to(device, non_blocking: true).MoveToOuterDisposeScope(),
            Host = host,
        };
    }

    public void Dispose() { Images.Dispose(); Targets.Dispose(); }
}
