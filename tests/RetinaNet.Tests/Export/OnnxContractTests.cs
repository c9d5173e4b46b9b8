using System.Diagnostics;
using System.Text.Json;
using RetinaNet.Export;
using RetinaNet.Model;
using Xunit;

namespace RetinaNet.Tests.Export;

/// <summary>The exported file's metadata read by a second ONNX implementation (Python's onnx package, which also
/// checks the model): the categories and the input/output contract must describe the graph that is really there.
/// </summary>
public class OnnxContractTests
{
    static JsonElement ReadWithPythonOnnx(string model)
    {
        var script = Path.Combine(AppContext.BaseDirectory, "Export", "read_onnx_metadata.py");
        using var p = Process.Start(new ProcessStartInfo("/usr/bin/python3", [script, model])
            { RedirectStandardOutput = true, RedirectStandardError = true })!;
        string stdout = p.StandardOutput.ReadToEnd(), stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, stderr);
        return JsonDocument.Parse(stdout).RootElement.Clone();
    }

    static object[] Shape(JsonElement shape) =>
        [.. shape.EnumerateArray()
            .Select(d => d.ValueKind == JsonValueKind.String ? (object)d.GetString()! : d.GetInt64())];

    [PythonOnnxFact]
    public void MetadataDescribesTheGraphThatIsThere()
    {
        var categories = new List<Category> { new(1, "person"), new(3, "car"), new(7, "traffic light") };
        using var model = new RetinaNetModel(
            new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 3, Categories = categories });
        foreach (bool raw in new[] { false, true })
        {
            var path = Path.Combine(Paths.TempDir(), raw ? "raw.onnx" : "full.onnx");
            OnnxExporter.Save(OnnxExporter.Build(model, new ExportOptions(128, 256) { RawHeads = raw }), path);
            var read = ReadWithPythonOnnx(path);
            var meta = read.GetProperty("metadata");

            var written = JsonDocument.Parse(meta.GetProperty("retinanet.categories").GetString()!).RootElement
                .EnumerateArray()
                .Select(c => new Category(c.GetProperty("id").GetInt64(), c.GetProperty("name").GetString()!));
            Assert.Equal(categories, written);
            Assert.Equal("3", meta.GetProperty("retinanet.classes").GetString());

            // every input the contract names is a graph input of that type and shape, and the other way round
            var input = JsonDocument.Parse(meta.GetProperty("retinanet.input").GetString()!).RootElement;
            var graphInputs = read.GetProperty("inputs").EnumerateArray().ToList();
            Assert.Equal(raw ? ["input_1"] : ["images", "image_sizes"],
                graphInputs.Select(i => i.GetProperty("name").GetString()));
            foreach (var g in graphInputs)
            {
                var described = input.GetProperty(g.GetProperty("name").GetString()!);
                Assert.Equal(described.GetProperty("type").GetString(), g.GetProperty("type").GetString());
                Assert.Equal(Shape(described.GetProperty("shape")), Shape(g.GetProperty("shape")));
            }
            Assert.Contains("0.485", input.ToString());
            Assert.Contains("shorter side is 800 px", input.GetProperty("resize").GetString());

            var outputs = JsonDocument.Parse(meta.GetProperty("retinanet.outputs").GetString()!).RootElement;
            var graphOutputs = read.GetProperty("outputs").EnumerateArray().ToList();
            if (raw)
            {
                Assert.Equal(10, graphOutputs.Count); // score_1..5, box_1..5
                Assert.Equal(new object[] { "batch", 9L * 3, 16L, 32L }, Shape(
                    graphOutputs.Single(o => o.GetProperty("name").GetString() == "score_1").GetProperty("shape")));
                Assert.Contains("anchor * 3 + class",
                    outputs.GetProperty("score_1..score_5").GetProperty("meaning").GetString());
            }
            else
                foreach (var g in graphOutputs)
                {
                    var described = outputs.GetProperty(g.GetProperty("name").GetString()!);
                    Assert.Equal(described.GetProperty("type").GetString(), g.GetProperty("type").GetString());
                    Assert.Equal(Shape(described.GetProperty("shape")), Shape(g.GetProperty("shape")));
                }
        }
    }
}
