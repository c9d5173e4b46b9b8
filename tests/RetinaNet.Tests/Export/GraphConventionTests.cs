using RetinaNet.Export;
using RetinaNet.Inference.Onnx;
using RetinaNet.Model;
using Xunit;

namespace RetinaNet.Tests.Export;

/// <summary>The naming convention passes rely on (<see cref="OnnxNames"/>), and the provider plumbing that can only be
/// exercised up to the point where it needs TensorRT.</summary>
public class GraphConventionTests
{
    [Fact]
    public void ConvNodesAreNamedByStateDictPathWithFoldedBatchNorm()
    {
        using var model = ExportFixtures.Model("ResNet18FPN");
        var proto = OnnxExporter.Build(model, new ExportOptions(128, 128) { FullPrecision = true });
        var state = StateDict.Of(model);
        var initializers = proto.Graph.Initializer.ToDictionary(i => i.Name);
        var convs = proto.Graph.Node.Where(n => n.OpType == "Conv").ToList();

        // every Conv of the model once, heads once per level (5), none else; no batch norm left in the graph
        int bodyAndFpn = model.modules().OfType<TorchSharp.Modules.Conv2d>().Count() - 10;
        Assert.Equal(bodyAndFpn + 10 * 5, convs.Count);
        Assert.DoesNotContain(proto.Graph.Node, n => n.OpType == "BatchNormalization");
        Assert.Contains(convs, c => c.Name == "backbones.ResNet18FPN.features.layer1.0.conv1");
        Assert.Contains(convs, c => c.Name == "backbones.ResNet18FPN.features.layer2.0.downsample.0");
        Assert.Contains(convs, c => c.Name == "cls_head.8/level1");
        foreach (var conv in convs)
        {
            string path = OnnxNames.ModulePathOf(conv.Name);
            Assert.True(state.ContainsKey(path + ".weight"), $"{conv.Name} is not a module path");
            Assert.Equal([conv.Input[0], path + ".weight", path + ".bias"], conv.Input);
            Assert.Equal(conv.Name, conv.Output.Single());
            Assert.Equal(state[path + ".weight"].shape, initializers[path + ".weight"].Dims);
        }
        // a folded conv without bias of its own got the batch norm's shift as bias
        Assert.False(state.ContainsKey("backbones.ResNet18FPN.features.conv1.bias"));
        Assert.Contains("backbones.ResNet18FPN.features.conv1.bias", initializers.Keys);
        Assert.Equal(proto.Graph.Node.Count, proto.Graph.Node.Select(n => n.Name).Distinct().Count());
    }

    [Fact]
    public void TensorRtMissingPartsAreNamedExactly()
    {
        string[] cpuOnly = ["CPUExecutionProvider"],
            gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"];
        Assert.Contains("-p:OnnxRuntime=gpu", TensorRtAvailability.Missing(cpuOnly, _ => true));
        var noLibrary = TensorRtAvailability.Missing(gpu, name => name != "libnvinfer.so.10");
        Assert.Equal("libnvinfer.so.10 (TensorRT 10) could not be loaded: " +
            "install TensorRT 10 and put its lib directory on LD_LIBRARY_PATH", noLibrary);
        Assert.Null(TensorRtAvailability.Missing(gpu, _ => true));
        // this build uses the CPU package: the real check stops at the provider
        Assert.Contains("no TensorRT execution provider", TensorRtAvailability.Missing());
    }

    [Fact]
    public void TensorRtOptionsCarryPrecisionCachesAndTheBatchProfile()
    {
        var cache = Path.Combine(Paths.TempDir(), "cache");
        var settings = OrtSessions.TensorRtSettings(
            new OrtExecution { Gpu = true, Fp16 = true, Int8 = true, CacheDirectory = cache, BatchProfile = (1, 4, 8) },
            new Dictionary<string, long[]> { ["images"] = [-1, 3, 128, 256], ["image_sizes"] = [-1, 2] });
        Assert.Equal("1", settings["trt_fp16_enable"]);
        Assert.Equal("1", settings["trt_int8_enable"]);
        Assert.Equal(cache, settings["trt_engine_cache_path"]);
        Assert.Equal(cache, settings["trt_timing_cache_path"]);
        Assert.True(Directory.Exists(cache));
        Assert.Equal("images:1x3x128x256,image_sizes:1x2", settings["trt_profile_min_shapes"]);
        Assert.Equal("images:4x3x128x256,image_sizes:4x2", settings["trt_profile_opt_shapes"]);
        Assert.Equal("images:8x3x128x256,image_sizes:8x2", settings["trt_profile_max_shapes"]);
        Assert.False(settings.ContainsKey("trt_dump_ep_context_model"));
    }

    [Fact]
    public void CpuSessionsNoteTheMissingGpuProvidersAndStillRun()
    {
        using var model = ExportFixtures.Model("ResNet18FPN");
        var path = Path.Combine(Paths.TempDir(), "m.onnx");
        OnnxExporter.Save(OnnxExporter.Build(model, new ExportOptions(128, 128)), path);
        var notes = new StringWriter();
        using var detector = OnnxDetector.Open(path, new OrtExecution { Gpu = true }, notes);
        var lines = notes.ToString().TrimEnd().Split('\n');
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("note: TensorRT not used: this build's ONNX Runtime", lines[0]);
        Assert.Contains("no CUDA execution provider", lines[1]);
        Assert.Equal((128, 128), detector.InputSize);
        Assert.Equal(3, detector.Classes);
    }

    [Fact]
    public void AnEngineModelIsRefusedInOneLineWithoutTensorRt()
    {
        // an EP-context model as ORT's TensorRT provider writes it for export OUT.plan: one EPContext node
        using var model = ExportFixtures.Model("ResNet18FPN");
        var proto = OnnxExporter.Build(model, new ExportOptions(128, 128));
        var outputs = proto.Graph.Output.Select(o => o.Name).ToList();
        proto.Graph.Node.Clear();
        proto.Graph.Initializer.Clear();
        var node = new Onnx.NodeProto { OpType = "EPContext", Domain = "com.microsoft", Name = "engine" };
        node.Input.AddRange([OnnxNames.Images, OnnxNames.ImageSizes]);
        node.Output.AddRange(outputs);
        proto.Graph.Node.Add(node);
        var path = Path.Combine(Paths.TempDir(), "m.plan");
        OnnxExporter.Save(proto, path);
        var gpu = Assert.Throws<TensorRtUnavailableException>(() =>
            OnnxDetector.Open(path, new OrtExecution { Gpu = true }, TextWriter.Null));
        Assert.Contains("holds a TensorRT engine: this build's ONNX Runtime", gpu.Message);
        var cpu = Assert.Throws<TensorRtUnavailableException>(() =>
            OnnxDetector.Open(path, new OrtExecution(), TextWriter.Null));
        Assert.Contains("--device cuda", cpu.Message);
    }
}
