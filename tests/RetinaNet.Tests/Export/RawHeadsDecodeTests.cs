using System.Diagnostics;
using System.Text.Json;
using RetinaNet.Boxes;
using RetinaNet.Export;
using RetinaNet.Inference;
using RetinaNet.Model;
using TorchSharp;
using Xunit;
using static RetinaNet.Native.Scalars;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Export;

/// <summary>A raw-heads export's documented decode (<c>samples/python/decode_raw_heads.py</c>, numpy alone, the
/// anchors from the exporter's <c>retinanet.anchors</c> metadata) gives the library's own detections: the same
/// random heads, sigmoid scores and box values as the export's outputs hold them, through the script and through
/// <see cref="Postprocess.Detect"/>. The scores are made distinct, so no tie decides an order.</summary>
public class RawHeadsDecodeTests
{
    [PythonNumpyFact]
    public void ThePythonDecodeOfRawHeadsEqualsTheLibrarysForRotatedBoxes() => Compare(rotated: true);

    [PythonNumpyFact]
    public void ThePythonDecodeOfRawHeadsEqualsTheLibrarysForAxisAlignedBoxes() => Compare(rotated: false);

    static void Compare(bool rotated)
    {
        using var scope = NewDisposeScope();
        var config = new DetectorConfig
        {
            Backbones = ["ResNet18FPN"], Classes = 2,
            Anchors = new AnchorConfig { Angles = rotated ? AnchorConfig.DefaultAngles : [] },
            Inference = new InferenceConfig { NmsThreshold = 0.5, Detections = 50 },
        };
        int a = config.Anchors.Count, k = config.BoxValues;
        var g = new Generator(17);
        var logits = new List<Tensor>(); var deltas = new List<Tensor>();
        for (int level = 0, size = 16; level < 5; level++, size /= 2)
        {
            // everything below the 0.05 threshold but 40 distinct winners a level, many of them overlapping
            var cls = (rand([1, a * config.Classes, size, size], generator: g) * Of(5) - Of(8)).view(-1);
            var winners = randperm(cls.shape[0], generator: g)[..Math.Min(40, (int)cls.shape[0])];
            using var offset = (0.01 * level).ToScalar();
            cls.index_put_(linspace(-2.5, 3, winners.shape[0]).index_select(0, randperm(winners.shape[0], generator: g))
                .Plus(offset), winners);
            logits.Add(cls.view(1, a * config.Classes, size, size));
            deltas.Add((rand([1, a * k, size, size], generator: g) - Of(0.5)) * Of(0.6));
        }
        using var heads = new HeadOutputs([.. logits], [.. deltas]);
        using var anchors = new AnchorGenerator(config.Anchors);
        var levels = anchors.For(128, 128, heads);
        using var ours = Postprocess.Detect(heads, levels, config.Classes, config.Inference, (128, 128));

        var dir = Paths.TempDir();
        var shapes = new Dictionary<string, long[]>();
        for (int level = 0; level < 5; level++)
        {
            Write(dir, OnnxNames.RawScores(level), logits[level].sigmoid(), shapes);
            Write(dir, OnnxNames.RawBoxes(level), deltas[level], shapes);
        }
        var inference = config.Inference;
        var settings = JsonSerializer.Serialize(new
        {
            threshold = inference.ScoreThreshold, top_n = inference.TopN, nms = inference.NmsThreshold,
            detections = inference.Detections,
        });
        File.WriteAllText(Path.Combine(dir, "meta.json"), $$"""
            {"shapes": {{JsonSerializer.Serialize(shapes)}}, "anchors": {{OnnxExporter.AnchorsMetadata(config)}}, "settings": {{settings}}}
            """);
        var script = Path.Combine(Paths.RepositoryRoot(), "samples", "python", "decode_raw_heads.py");
        using var python = Process.Start(new ProcessStartInfo("/usr/bin/python3", [script, dir])
            { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var error = python.StandardError.ReadToEndAsync();
        var output = python.StandardOutput.ReadToEnd();
        python.WaitForExit();
        Assert.True(python.ExitCode == 0, error.Result);
        var theirs = JsonDocument.Parse(output).RootElement.EnumerateArray().ToList();

        int count = (int)ours.Count[0].item<long>();
        Assert.True(count >= 20, $"{count} detections: the case tests too little");
        Assert.Equal(count, theirs.Count);
        var scores = ours.Scores[0].data<float>().ToArray();
        var boxes = ours.Boxes[0].data<float>().ToArray();
        var classes = ours.Classes[0].data<long>().ToArray();
        int width = rotated ? 5 : 4;
        Assert.Equal(width, (int)ours.Boxes.shape[2]);
        for (int i = 0; i < count; i++)
        {
            Assertions.Close(scores[i], theirs[i].GetProperty("score").GetDouble(), 1e-6, $"score {i}");
            Assert.Equal(classes[i], theirs[i].GetProperty("class").GetInt64());
            var box = theirs[i].GetProperty("box").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            for (int j = 0; j < width; j++)
                Assertions.Close(boxes[i * width + j], box[j], 2e-3, $"detection {i} value {j}");
        }
    }

    static void Write(string dir, string name, Tensor values, Dictionary<string, long[]> shapes)
    {
        shapes[name] = values.shape;
        File.WriteAllBytes(Path.Combine(dir, name + ".f32"), System.Runtime.InteropServices.MemoryMarshal.AsBytes(
            values.contiguous().data<float>().ToArray().AsSpan()).ToArray());
    }
}
