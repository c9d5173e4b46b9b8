using System.Diagnostics;
using System.Text.Json;
using RetinaNet.Cli;
using Xunit;

namespace RetinaNet.Tests.Inference;

/// <summary>infer --video: frames decoded by ffmpeg give the detections the same images give as files (a lossless
/// clip made from them by ffmpeg in the test), with frame indices and times; --save-video writes every frame.
/// Bitwise comparisons: not alongside a CPU training (see DetectorTests).</summary>
[Collection("global torch RNG")]
public class VideoTests
{
    static byte[] Ffmpeg(params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo("ffmpeg", ["-loglevel", "error", "-y", .. args])
            { RedirectStandardOutput = true, RedirectStandardError = true })!;
        using var output = new MemoryStream();
        var copy = p.StandardOutput.BaseStream.CopyToAsync(output);
        string errors = p.StandardError.ReadToEnd();
        p.WaitForExit();
        copy.Wait();
        Assert.True(p.ExitCode == 0, errors);
        return output.ToArray();
    }

    [FfmpegFact]
    public void FramesGiveTheDetectionsOfTheirImagesAndTheVideoIsWrittenBack()
    {
        var dir = Paths.TempDir();
        var (annotations, images) = ShapesOnDisk.Write(dir, 6, 96, seed: 11, "train.json");
        string model = Path.Combine(dir, "m.pth");
        Assert.Equal(0, CommandLine.Run(["train", model, "--annotations", annotations, "--images", images,
            "--backbone", "ResNet18FPN", "--backbone-weights", "none", "--iters", "1", "--batch", "2",
            "--resize", "96", "--max-size", "96", "--device", "cpu"], TextWriter.Null, TextWriter.Null));
        var files = Directory.GetFiles(images, "*.png").Order(StringComparer.Ordinal).ToArray();
        var frames = Path.Combine(dir, "frames");
        Directory.CreateDirectory(frames);
        for (int i = 0; i < files.Length; i++) File.Copy(files[i], Path.Combine(frames, $"f{i:000}.png"));
        string clip = Path.Combine(dir, "clip.mkv"), jsonl = Path.Combine(dir, "d.jsonl"),
            saved = Path.Combine(dir, "out.mkv");
        // lossless: the same pixels
        Ffmpeg("-framerate", "4", "-i", Path.Combine(frames, "f%03d.png"), "-c:v", "png", clip);

        var stderr = new StringWriter();
        int code = CommandLine.Run(["infer", model, "--video", clip, "--output", jsonl, "--save-video", saved,
            "--score-threshold", "0.01", "--batch", "1", "--device", "cpu"],
            TextWriter.Null, stderr); // batch 1: one model call a frame, as below
        Assert.True(code == 0, stderr.ToString());
        Assert.Contains($"6 frames of {clip}", stderr.ToString());

        var lines = File.ReadAllLines(jsonl);
        Assert.Equal(6, lines.Length);
        using var detector = Detector.Load(model, new DetectorOptions { Device = "cpu", ScoreThreshold = 0.01 });
        int total = 0;
        for (int k = 0; k < 6; k++)
        {
            using var doc = JsonDocument.Parse(lines[k]);
            var root = doc.RootElement;
            Assert.Equal(k, root.GetProperty("frame").GetInt64());
            Assert.Equal(k * 0.25, root.GetProperty("time").GetDouble(), 9); // 4 frames a second
            var expected = detector.Detect(files[k]);
            var got = root.GetProperty("detections").EnumerateArray().ToList();
            Assert.Equal(expected.Count, got.Count);
            for (int j = 0; j < got.Count; j++)
            {
                Assert.Equal(expected[j].CategoryId, got[j].GetProperty("category_id").GetInt64());
                Assert.Equal(expected[j].Score, got[j].GetProperty("score").GetSingle());
                var box = got[j].GetProperty("bbox").EnumerateArray().Select(v => v.GetSingle()).ToArray();
                Assert.Equal([expected[j].X, expected[j].Y, expected[j].Width, expected[j].Height], box);
            }
            total += got.Count;
        }
        Assert.True(total > 0, "no detections at threshold 0.01: the comparison above compared nothing");

        // the saved video: every frame, the input's size, boxes drawn (so not the input's pixels)
        var input = Ffmpeg("-i", clip, "-f", "rawvideo", "-pix_fmt", "rgb24", "-");
        var output = Ffmpeg("-i", saved, "-f", "rawvideo", "-pix_fmt", "rgb24", "-");
        Assert.Equal(6 * 96 * 96 * 3, input.Length);
        Assert.Equal(input.Length, output.Length);
        Assert.False(input.AsSpan(0, 96 * 96 * 3).SequenceEqual(output.AsSpan(0, 96 * 96 * 3)),
            "frame 0 came back without boxes");
    }

    [Fact]
    public void VideoOptionsAreCheckedBeforeAnyWork()
    {
        var dir = Paths.TempDir();
        var model = Path.Combine(dir, "m.pth");
        File.WriteAllBytes(model, [1, 2, 3]);
        var stderr = new StringWriter();
        Assert.Equal(2,
            CommandLine.Run(["infer", model, "--video", "v.mp4", "--images", dir], TextWriter.Null, stderr));
        Assert.Contains("--images does not go with --video", stderr.ToString());
        stderr = new StringWriter();
        Assert.Equal(2,
            CommandLine.Run(["infer", model, "--save-video", "o.mp4", "--images", dir], TextWriter.Null, stderr));
        Assert.Contains("--save-video needs --video", stderr.ToString());
        stderr = new StringWriter();
        Assert.Equal(2, CommandLine.Run(
            ["infer", model, "--video", "v.mp4", "--save-video", Path.Combine(dir, "o.avi")], TextWriter.Null, stderr));
        Assert.Contains("--save-video", stderr.ToString());
    }
}
