using System.Text;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace RetinaNet.Tests;

static class Paths
{
    public static string Fixture(params string[] parts) =>
        Path.Combine([AppContext.BaseDirectory, "Fixtures", .. parts]);

    /// <summary>Real ImageNet ResNet18 weights in torchvision's layout, from the NuGet package the build downloads
    /// (<see cref="RetinaNet.Training.PackagedResNet18"/>): the safetensors cache file, or a .pth copy of it.</summary>
    public static string ImageNetResNet18(bool pth = false)
    {
        var safetensors = RetinaNet.Training.PackagedResNet18.Locate(TextWriter.Null)
            ?? throw new InvalidOperationException(
                $"NuGet's {RetinaNet.Training.PackagedResNet18.Package} is missing: `dotnet restore` downloads it");
        return pth ? resnet18Pth.Value : safetensors;
    }

    /// <summary>The packaged weights as a torch.save file, written once per test process.</summary>
    static readonly Lazy<string> resnet18Pth = new(() =>
    {
        var weights = RetinaNet.Checkpoints.SafeTensorsFile.Load(ImageNetResNet18());
        var path = Path.Combine(TempDir(), "resnet18-imagenet.pth");
        var root = new OrderedDictionary<string, object?>(
            weights.Select(kv => KeyValuePair.Create(kv.Key, (object?)kv.Value)));
        RetinaNet.Checkpoints.TorchCheckpointFile.Save(path, root);
        return path;
    });

    static readonly List<string> created = new();

    static Paths()
    {
        // A run writes gigabytes of checkpoints, packages and images, and the test host is often stopped before its
        // exit handlers run (they did not, in CI), so folders are named after the process that made them: those of
        // processes that are gone go when the next run starts, and this process's own when it exits.
        var root = new DirectoryInfo(Path.Combine(Path.GetTempPath(), "retinanet-tests"));
        if (root.Exists)
            foreach (var stale in root.GetDirectories().Where(d => !OwnerIsRunning(d.Name)))
                try { stale.Delete(recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            lock (created)
                foreach (var dir in created)
                    try { Directory.Delete(dir, recursive: true); }
                    catch (IOException) { } catch (UnauthorizedAccessException) { }
        };
    }

    /// <summary>Whether the process whose id starts a temp folder's name ("PID-guid") still runs.</summary>
    static bool OwnerIsRunning(string name)
    {
        if (!int.TryParse(name.Split('-')[0], out int pid)) return false;
        try
        {
            using var owner = System.Diagnostics.Process.GetProcessById(pid);
            return !owner.HasExited;
        }
        catch (ArgumentException) { return false; }
    }

    /// <summary>The repository's root folder (the one holding RetinaNet.slnx), above the test binaries.</summary>
    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "RetinaNet.slnx"))) return dir.FullName;
        throw new DirectoryNotFoundException("the repository root (RetinaNet.slnx) is not above the test binaries");
    }

    public static string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "retinanet-tests", $"{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        lock (created) created.Add(dir);
        return dir;
    }
}

/// <summary>A theory that runs only where a CUDA GPU is visible, and says so when skipped.</summary>
public sealed class GpuTheoryAttribute : TheoryAttribute
{
    public GpuTheoryAttribute()
    {
        if (!torch.cuda.is_available()) Skip = "skipped: no CUDA GPU on this machine (runs on the GPU machine)";
    }
}

/// <summary>A fact that runs only where a CUDA GPU is visible, and says so when skipped.</summary>
/// <summary>A test that delivers SIGINT (Ctrl-C) to a child process: skipped, saying so, where this process ignores
/// SIGINT, as a shell's background job does, since its children inherit that and never see the signal.</summary>
public sealed class SigintFactAttribute : FactAttribute
{
    public SigintFactAttribute()
    {
        var mask = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:"))?[7..].Trim();
        if (mask is not null && (Convert.ToUInt64(mask, 16) & 0x2) != 0)
            Skip = "skipped: SIGINT is ignored in this process (started in the background), " +
                "so its children cannot get Ctrl-C";
    }
}

public sealed class GpuFactAttribute : FactAttribute
{
    public GpuFactAttribute()
    {
        if (!torch.cuda.is_available()) Skip = "skipped: no CUDA GPU on this machine (runs on the GPU machine)";
    }
}

/// <summary>The deterministic parameter fill shared with tests/fixtures/make_backbone_fixtures.py (see its docstring):
/// both sides compute the same weights from names, so no weight file is needed.</summary>
static class FormulaWeights
{
    public static uint Fnv1a(string key)
    {
        uint h = 2166136261;
        foreach (byte b in Encoding.UTF8.GetBytes(key)) { h ^= b; h *= 16777619; }
        return h;
    }

    public static float[] Values(string key, long[] shape)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        double s = Fnv1a(key) % 10007;
        double fanIn = shape.Length == 4 ? shape[1] * shape[2] * shape[3] : 1;
        var v = new float[n];
        for (long i = 0; i < n; i++)
        {
            double x = Math.Sin(0.001 * s + 0.61803398875 * i);
            v[i] = (float)(key.EndsWith("running_var") ? 1 + 0.25 * (x + 1)
                : key.EndsWith("running_mean") ? 0.1 * x
                : shape.Length == 4 ? x * Math.Sqrt(1 / fanIn)
                : key.EndsWith("weight") ? 0.5 + 0.25 * x
                : 0.1 * x);
        }
        return v;
    }

    public static void Fill(nn.Module module)
    {
        using var noGrad = no_grad();
        foreach (var (key, t) in RetinaNet.Model.StateDict.Of(module))
        {
            if (RetinaNet.Model.StateDict.IsBatchCounter(key)) continue;
            using var values = tensor(Values(key, t.shape), t.shape);
            t.copy_(values);
        }
    }

    /// <summary>x.flatten()[i] = sin(0.1 i + 0.5), as the fixture script.</summary>
    public static Tensor Input(params long[] shape)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        var v = new float[n];
        for (long i = 0; i < n; i++) v[i] = (float)Math.Sin(0.1 * i + 0.5);
        return tensor(v, shape);
    }
}

static class Assertions
{
    /// <summary>max |a - b| / max |b| &lt;= tolerance.</summary>
    public static void RelClose(Tensor expected, Tensor actual, double tolerance, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        double scale = expected.abs().max().item<float>();
        double err = (expected - actual).abs().max().item<float>();
        Assert.True(err <= tolerance * Math.Max(scale, 1e-12),
            $"{what}: max abs error {err:E3} vs max |expected| {scale:E3} (rel {err / scale:E3} > {tolerance:E1})");
    }

    public static void Close(double expected, double actual, double tolerance, string what = "")
        => Assert.True(Math.Abs(expected - actual) <= tolerance, $"{what}: expected {expected:R}, got {actual:R}");
}

/// <summary>A test that runs /usr/bin/python3 with a module of Debian's (.ci/run installs python3-onnx and
/// python3-numpy where apt can); skipped, saying so, where python3 cannot import it.</summary>
public class PythonModuleFactAttribute : FactAttribute
{
    static readonly Dictionary<string, bool> Imports = new();

    public static bool CanImport(string module)
    {
        lock (Imports)
        {
            if (Imports.TryGetValue(module, out bool known)) return known;
            bool ok = false;
            if (File.Exists("/usr/bin/python3"))
            {
                using var p = System.Diagnostics.Process.Start(
                    new System.Diagnostics.ProcessStartInfo("/usr/bin/python3", ["-c", $"import {module}"])
                    { RedirectStandardError = true, RedirectStandardOutput = true })!;
                p.WaitForExit();
                ok = p.ExitCode == 0;
            }
            return Imports[module] = ok;
        }
    }

    public PythonModuleFactAttribute(string module, string package)
    {
        if (!CanImport(module)) Skip = $"skipped: /usr/bin/python3 cannot import {module} (apt-get install {package})";
    }
}

/// <summary>A test that reads files with Debian's python3-onnx as a second ONNX implementation.</summary>
public sealed class PythonOnnxFactAttribute() : PythonModuleFactAttribute("onnx", "python3-onnx");

/// <summary>A test that runs a script of ours on Debian's python3-numpy.</summary>
public sealed class PythonNumpyFactAttribute() : PythonModuleFactAttribute("numpy", "python3-numpy");

/// <summary>A test that needs ffmpeg and ffprobe (.ci/run installs them where apt can); skipped, saying so, where
/// they are not on PATH.</summary>
public sealed class FfmpegFactAttribute : FactAttribute
{
    public FfmpegFactAttribute()
    {
        if (RetinaNet.VideoDetection.Missing() is string missing) Skip = $"skipped: {missing}";
    }
}

/// <summary>A test driven through a real browser: Debian's headless Chromium (.ci/run installs it where apt can);
/// skipped, saying so, where none is installed.</summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public static string? Executable { get; } =
        new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome" }
            .FirstOrDefault(File.Exists);

    public ChromiumFactAttribute()
    {
        if (Executable is null) Skip = "skipped: no Chromium (apt-get install chromium; .ci/run does where it can)";
    }
}
