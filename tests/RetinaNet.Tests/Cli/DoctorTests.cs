using System.Diagnostics;
using RetinaNet.Cli;
using Xunit;

namespace RetinaNet.Tests.Cli;

public class DoctorTests
{
    static bool OnPath(string program)
    {
        using var p = Process.Start(
            new ProcessStartInfo("/bin/sh", ["-c", $"command -v {program}"]) { RedirectStandardOutput = true })!;
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return p.ExitCode == 0;
    }

    [Fact]
    public void SaysWhatIsThereAndHowToGetWhatIsNot()
    {
        var stdout = new StringWriter();
        int code = CommandLine.Run(["doctor"], stdout, TextWriter.Null);
        var lines = stdout.ToString().TrimEnd().Split('\n');
        Assert.Equal(0, code);
        Assert.Equal("The toolkit can run here; missing items only turn features off.", lines[^1]);

        string Line(string component) => Assert.Single(lines, l => l.Length > 9 && l[9..].StartsWith(component + " "));
        Assert.StartsWith("ok", Line(".NET"));
        Assert.Contains(Environment.Version.ToString(), Line(".NET"));
        Assert.StartsWith("ok", Line("libtorch"));
        Assert.Contains(TorchSharp.torch.__version__, Line("libtorch"));
        Assert.StartsWith("ok", Line("ONNX Runtime"));
        Assert.Contains("CPUExecutionProvider", Line("ONNX Runtime"));
        Assert.StartsWith(OnPath("ffmpeg") ? "ok" : "missing", Line("ffmpeg (video)"));

        bool gpu = TorchSharp.torch.cuda.is_available();
        Assert.StartsWith(gpu ? "ok" : "missing", Line("CUDA device"));
        if (!gpu) Assert.StartsWith("n/a", Line("NVRTC (our CUDA kernels)"));
        var from = Line("libtorch").Split(" from ")[1].Trim();
        Assert.True(File.Exists(Path.Combine(from, "libtorch_cpu.so")), $"libtorch said to come from {from}");
        // every missing item comes with its fix on the next line
        for (int i = 0; i < lines.Length - 1; i++)
            if (lines[i].StartsWith("missing")) Assert.Contains("fix: ", lines[i + 1]);
        Assert.Contains("TensorRT (export .plan)", stdout.ToString());
        Assert.Contains("nvJPEG (--with-dali)", stdout.ToString());
    }
}
