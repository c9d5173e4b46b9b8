using System.Diagnostics;
using RetinaNet.Export;
using Xunit;

namespace RetinaNet.Tests.Export;

/// <summary>Exported files as others read them: the ONNX reference checker (full check: strict shape and type
/// inference) accepts them, and reading one back gives IR version 8 and opset 17.</summary>
public class OnnxFileTests
{
    internal const string Python = "/usr/bin/python3";

    public static bool PythonHasOnnx => PythonModuleFactAttribute.CanImport("onnx");

    internal static (int ExitCode, string Output) Run(string exe, string arguments)
    {
        try
        {
            using var process = Process.Start(
                new ProcessStartInfo(exe, arguments) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            var output = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEnd();
            process.WaitForExit();
            return (process.ExitCode, output.Result + error);
        }
        catch (System.ComponentModel.Win32Exception) { return (-1, $"{exe} not found"); }
    }

    internal static string CheckScript()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var script = Path.Combine(dir.FullName, "tools", "onnx", "check.py");
            if (File.Exists(script)) return script;
        }
        throw new FileNotFoundException("tools/onnx/check.py not found above the test binaries");
    }

    [PythonOnnxFact]
    public void TheOnnxCheckerAcceptsEveryVariant()
    {
        var dir = Paths.TempDir();
        var files = new List<string>();
        void Export(string name, string backbone, ExportOptions options)
        {
            using var model = ExportFixtures.Model(backbone);
            var path = Path.Combine(dir, name);
            OnnxExporter.Save(OnnxExporter.Build(model, options), path);
            files.Add(path);
        }
        Export("full-fp32.onnx", "ResNet18FPN", new ExportOptions(128, 256) { FullPrecision = true });
        Export("full-fp16.onnx", "ResNet18FPN", new ExportOptions(128, 128));
        Export("raw-fp32.onnx", "MobileNetV2FPN",
            new ExportOptions(128, 128) { RawHeads = true, FullPrecision = true });
        Export("full-opset13.onnx", "ResNet18FPN", new ExportOptions(128, 128) { Opset = 13 });

        var (code, output) = Run(Python, $"\"{CheckScript()}\" {string.Join(" ", files.Select(f => $"\"{f}\""))}");
        Assert.True(code == 0, output);
        Assert.Equal(files.Count, output.Split('\n').Count(l => l.Contains(": ok (IR version 8")));
    }

    [PythonOnnxFact]
    public void TheCheckerScriptRejectsABrokenGraph()
    {
        using var model = ExportFixtures.Model("ResNet18FPN");
        var proto = OnnxExporter.Build(model, new ExportOptions(128, 128) { RawHeads = true, FullPrecision = true });
        proto.Graph.Node[3].Input[0] = "no_such_value"; // a dangling edge
        var path = Path.Combine(Paths.TempDir(), "broken.onnx");
        OnnxExporter.Save(proto, path);
        var (code, output) = Run(Python, $"\"{CheckScript()}\" \"{path}\"");
        Assert.Equal(1, code);
        Assert.Contains("FAILED", output);
    }

    [Fact]
    public void ReadBackItIsIrVersion8Opset17WithASymbolicBatch()
    {
        using var model = ExportFixtures.Model("ResNet18FPN");
        var path = Path.Combine(Paths.TempDir(), "m.onnx");
        OnnxExporter.Save(OnnxExporter.Build(model, new ExportOptions(256, 128)), path);
        var proto = OnnxExporter.Load(path);
        Assert.Equal(8, proto.IrVersion);
        var opset = Assert.Single(proto.OpsetImport);
        Assert.Equal("", opset.Domain);
        Assert.Equal(17, opset.Version);
        var images = proto.Graph.Input.Single(i => i.Name == OnnxNames.Images);
        var dims = images.Type.TensorType.Shape.Dim;
        Assert.Equal("batch", dims[0].DimParam);
        Assert.Equal([3L, 256, 128], dims.Skip(1).Select(d => d.DimValue));
        Assert.Equal([OnnxNames.Boxes, OnnxNames.Scores, OnnxNames.Classes], proto.Graph.Output.Select(o => o.Name));
    }
}
