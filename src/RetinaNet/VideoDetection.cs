using System.Collections.Concurrent;
using FFMpegCore;
using FFMpegCore.Pipes;
using RetinaNet.Data;
using RetinaNet.Data.Coco;
using RetinaNet.Data.Imaging;

namespace RetinaNet;

/// <summary>The detections of one video frame: its index from 0, its time in seconds from the start (frame / frame
/// rate).</summary>
public sealed record FrameResult(long Frame, double Seconds, IReadOnlyList<Detection> Detections);

/// <summary>Detection on video: a file or anything ffmpeg opens (an RTSP or HTTP stream, a device) is decoded by the
/// system's ffmpeg through FFMpegCore into RGB frames, which go to a <see cref="Detector"/> a batch at a time; with
/// an output path the frames, boxes drawn, are encoded again (H.264 in an .mp4, or what the extension says),
/// written to a temporary file and renamed at the end.</summary>
public static class VideoDetection
{
    /// <summary>Why video cannot be read here (ffmpeg or ffprobe not on PATH, with the fix), or null.</summary>
    public static string? Missing()
    {
        var absent = new[] { "ffmpeg", "ffprobe" }.Where(p => OnPath(p) is null).ToArray();
        return absent.Length == 0 ? null
            : $"{string.Join(" and ", absent)} not found on PATH; video needs FFmpeg: " +
                "apt-get install ffmpeg (Debian/Ubuntu), dnf install ffmpeg, brew install ffmpeg";
    }

    /// <summary>Runs the detector over every frame of <paramref name="source"/>, calling <paramref name="onFrame"/>
    /// in frame order; returns the number of frames. <paramref name="minScore"/> is the drawing threshold of the
    /// saved video.</summary>
    public static async Task<long> RunAsync(Detector detector, string source, Action<FrameResult> onFrame,
        string? saveVideo = null, double minScore = 0.3, int batch = 8, CancellationToken cancel = default)
    {
        if (Missing() is string missing) throw new InvalidOperationException(missing);
        IMediaAnalysis probe;
        bool url = IsUrl(source);
        if (!url && !File.Exists(source))
            throw new BadInputException(source,
                "video not found; give a video file or a URL ffmpeg opens (rtsp://, http://...)");
        try
        {
            probe = url ? await FFProbe.AnalyseAsync(new Uri(source), cancellationToken: cancel)
                : await FFProbe.AnalyseAsync(source, cancellationToken: cancel);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new BadInputException(source,
                $"ffprobe cannot read it as video ({CocoFile.OneLine(e.Message, 160)}); check the file or URL");
        }
        var stream = probe.PrimaryVideoStream ?? throw new BadInputException(source, "has no video stream");
        // ffmpeg turns frames upright by the stream's rotation: a quarter turn swaps width and height
        bool quarter = Math.Abs(stream.Rotation) % 180 == 90;
        int streamWidth = stream.Width ?? 0, streamHeight = stream.Height ?? 0;
        if (streamWidth <= 0 || streamHeight <= 0)
            throw new BadInputException(source, "its video stream has no frame size");
        int width = quarter ? streamHeight : streamWidth, height = quarter ? streamWidth : streamHeight;
        double fps = stream.AverageFrameRate is double average && average > 0 ? average : 25;
        var categories = new CategoryMap(detector.Categories.Select(c => new CocoCategory(c.Id, c.Name)));

        using var toEncoder = saveVideo is null ? null
            : new BlockingCollection<IVideoFrame>(boundedCapacity: 2 * batch);
        string? temp = saveVideo is null ? null
            : Path.Combine(Path.GetDirectoryName(Path.GetFullPath(saveVideo))!,
                $".{Path.GetFileNameWithoutExtension(saveVideo)}.{Guid.NewGuid():N}{Path.GetExtension(saveVideo)}");
        bool h264 = Path.GetExtension(saveVideo ?? "").ToLowerInvariant()
            is ".mp4" or ".mov"; // else lossless PNG frames
        Task? encoding = toEncoder is null ? null : Task.Run(() => FFMpegArguments
            .FromPipeInput(new RawVideoPipeSource(toEncoder.GetConsumingEnumerable()) { FrameRate = fps })
            .OutputToFile(temp!, overwrite: true, o => o.WithVideoCodec(h264 ? "libx264" : "png")
                .WithCustomArgument("-pix_fmt " + (h264 ? "yuv420p" : "rgb24")))
            .ProcessAsynchronously(), cancel);

        long frames = 0;
        var pending = new List<RgbImage>(batch);
        void Flush()
        {
            if (pending.Count == 0) return;
            var detections = detector.Detect(pending);
            for (int i = 0; i < pending.Count; i++, frames++)
            {
                onFrame(new FrameResult(frames, frames / fps, detections[i]));
                if (toEncoder is null) continue;
                DetectionPictures.Draw(pending[i], detections[i].Select(d =>
                        new CocoDetection(frames, d.CategoryId, d.X, d.Y, d.Width, d.Height, d.Score)),
                    [], categories, minScore);
                toEncoder.Add(new RgbFrame(pending[i]), cancel);
            }
            pending.Clear();
        }
        try
        {
            await foreach (var frame in DecodeAsync(source, width, height, cancel))
            {
                pending.Add(frame);
                if (pending.Count == batch) Flush();
            }
            Flush();
        }
        finally
        {
            toEncoder?.CompleteAdding();
        }
        if (encoding is not null)
        {
            try
            {
                await encoding;
                File.Move(temp!, saveVideo!, overwrite: true);
            }
            finally
            {
                if (File.Exists(temp)) File.Delete(temp); // a failed encoding leaves no stray file beside the output
            }
        }
        return frames;
    }

    /// <summary>The full path of <paramref name="program"/> in a PATH folder, or null.</summary>
    public static string? OnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists);

    static bool IsUrl(string source) => Uri.TryCreate(source, UriKind.Absolute, out var uri) && !uri.IsFile;

    /// <summary>The frames of <paramref name="source"/> as RGB, read from an ffmpeg process's standard output one
    /// whole frame at a time. A process of our own rather than FFMpegCore's output pipe: that pipe is cancelled when
    /// ffmpeg exits, losing the frames still in it whenever the reader (the detector) is slower than the decoder;
    /// here ffmpeg waits on a full pipe, so a slow detector holds no more than a frame in memory.</summary>
    static async IAsyncEnumerable<RgbImage> DecodeAsync(string source, int width, int height,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancel)
    {
        var start = new System.Diagnostics.ProcessStartInfo("ffmpeg", ["-nostdin", "-loglevel", "error", "-i", source,
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
            { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = System.Diagnostics.Process.Start(start)
            ?? throw new InvalidOperationException("ffmpeg did not start");
        var errors = process.StandardError.ReadToEndAsync(cancel);
        var output = process.StandardOutput.BaseStream;
        int size = width * height * 3;
        try
        {
            while (true)
            {
                var pixels = new byte[size];
                int read = 0;
                while (read < size)
                {
                    int n = await output.ReadAsync(pixels.AsMemory(read, size - read), cancel);
                    if (n == 0) break;
                    read += n;
                }
                if (read < size) break; // the end (a partial last frame is dropped)
                yield return new RgbImage(width, height, pixels);
            }
            await process.WaitForExitAsync(cancel);
            if (process.ExitCode != 0)
                throw new BadInputException(source,
                    $"ffmpeg could not decode it ({CocoFile.OneLine(await errors, 160)})");
        }
        finally
        {
            if (!process.HasExited) process.Kill();
        }
    }

    /// <summary>An RGB frame for the encoder's raw input.</summary>
    sealed class RgbFrame(RgbImage image) : IVideoFrame
    {
        public int Width => image.Width;
        public int Height => image.Height;
        public string PixelFormat => "rgb24";
        public void Serialize(Stream pipe) => pipe.Write(image.Pixels);
        public Task SerializeAsync(Stream pipe, CancellationToken token) =>
            pipe.WriteAsync(image.Pixels, token).AsTask();
    }
}
