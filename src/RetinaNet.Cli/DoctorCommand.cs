namespace RetinaNet.Cli;

/// <summary>(ours) <c>retinanet doctor</c>: what this machine offers, one line each, with the fix for what is
/// missing (<see cref="Doctor"/>).</summary>
static class DoctorCommand
{
    public static CommandSpec Spec()
        => new("doctor",
        "(ours) What this machine has for the toolkit (.NET, libtorch, CUDA, NVRTC, NCCL, nvJPEG, cuDNN, ONNX Runtime, "
        + "TensorRT, ffmpeg) and how to get what is missing.", [], []);

    public static int Run(ParsedArgs a, TextWriter stdout)
    {
        var findings = Doctor.Examine();
        int width = findings.Max(f => f.Component.Length);
        foreach (var f in findings)
        {
            string status = f.Found ? "ok" : f.Fix is null ? "n/a" : "missing";
            stdout.WriteLine($"{status,-7}  {f.Component.PadRight(width)}  {f.Detail}");
            if (!f.Found && f.Fix is not null) stdout.WriteLine($"{"",7}  {"".PadRight(width)}  fix: {f.Fix}");
        }
        bool usable = findings.Where(f => f.Required).All(f => f.Found);
        stdout.WriteLine(usable ? "The toolkit can run here; missing items only turn features off."
            : "The toolkit cannot run here until the required items above are fixed.");
        return usable ? CommandLine.Ok : 1;
    }
}
