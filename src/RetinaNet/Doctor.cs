using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using RetinaNet.Distributed;
using RetinaNet.Inference.Onnx;
using RetinaNet.Native;
using TorchSharp;

namespace RetinaNet;

/// <summary>One thing <see cref="Doctor"/> looked for: found or not, what it found, and the fix when it is
/// missing (none when it was not looked for: a GPU library without a GPU). <c>Required</c> ones stop the toolkit;
/// the others turn features off (GPU, kernels, video, ...).</summary>
public sealed record DoctorFinding(string Component, bool Found, string Detail, string? Fix = null,
    bool Required = false);

/// <summary>What this machine offers the toolkit: .NET, libtorch and its flavour, a CUDA device and its driver,
/// NVRTC (our kernels), NCCL, nvJPEG, cuDNN, ONNX Runtime and its providers, TensorRT, ffmpeg. Each probe is the
/// one the feature itself uses, so a finding is what the feature will see.</summary>
public static class Doctor
{
    public static IReadOnlyList<DoctorFinding> Examine()
    {
        var findings = new List<DoctorFinding>
        {
            new(".NET", true, $"{RuntimeInformation.FrameworkDescription} on {RuntimeInformation.OSDescription} " +
                $"({RuntimeInformation.ProcessArchitecture}, {Environment.ProcessorCount} cores)", Required: true),
            LibTorch(),
        };
        bool gpu = SafeCudaAvailable();
        findings.Add(gpu
            ? new("CUDA device", true,
                $"{torch.cuda.device_count()} visible; driver {DriverVersion() ?? "version unknown"}")
            : new("CUDA device", false,
                DriverVersion() is string d ? $"driver {d} loaded, but libtorch sees no device" : "none visible",
                LibTorchFlavour() == "cpu"
                    ? "this build has CPU libtorch: build with -p:LibTorch=cuda on a machine with an NVIDIA GPU"
                    : "install the NVIDIA driver, or check CUDA_VISIBLE_DEVICES; " +
                        "training and inference run on the CPU meanwhile"));
        findings.Add(GpuPart("NVRTC (our CUDA kernels)", gpu, () => CudaKernels.MissingReason,
            "put libnvrtc.so.13 or .12 next to libtorch, in CUDA_HOME or /usr/local/cuda, " +
                "or name it in RETINANET_NVRTC; libtorch's operations run meanwhile (same results, slower)"));
        findings.Add(GpuPart("cuDNN", gpu,
            () => CudnnSettings.Available ? null : "libtorch's cuDNN flags are not exported here",
            "use a CUDA libtorch build (it ships cuDNN)"));
        findings.Add(GpuPart("NCCL (several GPUs)", gpu, () => NcclLibrary.MissingReason,
            "install NCCL 2 (libnccl.so.2) or use a CUDA libtorch that ships it; one GPU needs none"));
        findings.Add(GpuPart("nvJPEG (--with-dali)", gpu, () => NvJpeg.MissingReason,
            "install CUDA's nvJPEG (libnvjpeg.so); images decode on the CPU meanwhile"));
        findings.Add(AllocatorSettings());
        findings.AddRange(OnnxRuntime());
        findings.Add(Ffmpeg());
        return findings;
    }

    /// <summary>The CUDA caching allocator's settings as libtorch will read them (the C environment; `retinanet` sets
    /// <see cref="CudaAllocatorDefaults.Settings"/> unless the user set them).</summary>
    static DoctorFinding AllocatorSettings()
    {
        string? own = CudaAllocatorDefaults.Read(CudaAllocatorDefaults.Variable),
            renamed = CudaAllocatorDefaults.Read(CudaAllocatorDefaults.NewVariable);
        return new("CUDA allocator", true, own is not null ? $"{CudaAllocatorDefaults.Variable}={own}"
            : renamed is not null ? $"{CudaAllocatorDefaults.NewVariable}={renamed}" : "libtorch's defaults");
    }

    static bool SafeCudaAvailable()
    {
        try { return torch.cuda.is_available(); }
        catch (Exception) { return false; }
    }

    static string? LibTorchFlavour()
    {
        var (cpu, _) = LibTorchLibraries.Find(LibTorchLibraries.PlatformName("torch_cpu"));
        if (cpu == IntPtr.Zero) return null;
        return LibTorchLibraries.Find(LibTorchLibraries.PlatformName("torch_cuda")).Handle != IntPtr.Zero
            ? "cuda" : "cpu";
    }

    static DoctorFinding LibTorch()
    {
        var (handle, path) = LibTorchLibraries.Find(LibTorchLibraries.PlatformName("torch_cpu"));
        if (handle == IntPtr.Zero)
            return new("libtorch", false, "not loaded",
                "build with -p:LibTorch=cpu or cuda (the default bundles one); " +
                "with -p:LibTorch=none put a libtorch 2.10 lib folder on LD_LIBRARY_PATH", Required: true);
        return new("libtorch", true, $"{LibTorchFlavour()} build, {torch.__version__}, from {LoadedFrom(path ?? "")}",
            Required: true);
    }

    /// <summary>The folder of a loaded library, from the process's memory map (a library found by its soname has no
    /// folder in its name).</summary>
    static string LoadedFrom(string library)
    {
        const string maps = "/proc/self/maps";
        string name = Path.GetFileName(library);
        if (File.Exists(maps))
            foreach (var line in File.ReadLines(maps))
                if (line.IndexOf('/') is int slash and >= 0 && Path.GetFileName(line[slash..].Trim()) == name)
                    return Path.GetDirectoryName(line[slash..].Trim()) ?? library;
        return library;
    }

    static DoctorFinding GpuPart(string component, bool gpu, Func<string?> missing, string fix)
    {
        if (!gpu) return new(component, false, "not looked for: no CUDA device", null);
        string? reason;
        try { reason = missing(); }
        catch (Exception e) { reason = e.Message; }
        return reason is null ? new(component, true, "found") : new(component, false, reason, fix);
    }

    static string? DriverVersion()
    {
        const string file = "/proc/driver/nvidia/version";
        if (!File.Exists(file)) return null;
        // "NVRM version: NVIDIA UNIX [Open] Kernel Module [for x86_64]  580.159.04  Release Build ..."
        var line = File.ReadLines(file).FirstOrDefault() ?? "";
        return System.Text.RegularExpressions.Regex.Match(line, @"\b\d+\.\d+(\.\d+)?\b") is { Success: true } m
            ? m.Value : null;
    }

    static IEnumerable<DoctorFinding> OnnxRuntime()
    {
        string[] providers;
        try { providers = OrtEnv.Instance().GetAvailableProviders(); }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException)
        {
            return [new("ONNX Runtime", false, "its native library (libonnxruntime.so) cannot be loaded",
                "it ships beside the app: publish or build again (dotnet publish keeps it); " +
                "exported .onnx models need it")];
        }
        var found = new DoctorFinding("ONNX Runtime", true,
            $"{OrtEnv.Instance().GetVersionString()}, providers: {string.Join(", ", providers)}");
        string? trt = TensorRtAvailability.Missing();
        return [found, trt is null ? new("TensorRT (export .plan)", true, "found")
            : new("TensorRT (export .plan)", false, "not usable", trt)];
    }

    static DoctorFinding Ffmpeg()
    {
        var ffmpeg = VideoDetection.OnPath("ffmpeg");
        return ffmpeg is null
            ? new("ffmpeg (video)", false, "not on PATH",
                "install it: apt-get install ffmpeg (Debian/Ubuntu), dnf install ffmpeg, brew install ffmpeg")
            : new("ffmpeg (video)", true, ffmpeg);
    }
}
