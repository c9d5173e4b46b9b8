using RetinaNet.Model;
using static RetinaNet.Cli.SharedOptions;

namespace RetinaNet.Cli;

/// <summary>Checks of command-line values; each failure is one line naming the option, the value and the
/// fix.</summary>
static class Validation
{
    public static void ExistingFile(string what, string? path, params string[] extensions)
    {
        if (string.IsNullOrEmpty(path)) throw new UsageException($"{what}: a file path is needed");
        if (Directory.Exists(path)) throw new UsageException($"{what}: {path} is a directory, expected a file");
        if (!File.Exists(path)) throw new UsageException($"{what}: {path} does not exist");
        Extension(what, path, extensions);
    }

    public static void Extension(string what, string path, params string[] extensions)
    {
        if (extensions.Length > 0 && !extensions.Any(e => path.EndsWith(e, StringComparison.OrdinalIgnoreCase)))
            throw new UsageException($"{what}: {path} has the wrong extension, expected "
                + $"{string.Join(" or ", extensions)}");
    }

    public static void ExistingDirectory(string what, string? path)
    {
        if (string.IsNullOrEmpty(path)) throw new UsageException($"{what}: a directory is needed");
        if (File.Exists(path)) throw new UsageException($"{what}: {path} is a file, expected a directory of images");
        if (!Directory.Exists(path)) throw new UsageException($"{what}: directory {path} does not exist");
    }

    /// <summary>An output file can be written: it is not a folder, and its folder exists and takes a new file (a
    /// probe is created and removed there), so a command fails now rather than after its slow work.</summary>
    public static void WritableParent(string what, string path)
    {
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full)) throw new UsageException($"{what}: {path} is a directory; give a file path");
        var dir = Path.GetDirectoryName(full);
        if (dir is null) return;
        if (!Directory.Exists(dir))
            throw new UsageException(FileInTheWay(dir) is string file
                ? $"{what}: cannot write {path}: {file} is a file, not a folder; choose another path"
                : $"{what}: the folder of {path} does not exist; create {dir} first");
        Probe(what, path, dir);
    }

    /// <summary>An output folder, created if missing: no file stands in its way and the nearest existing folder
    /// takes a new file.</summary>
    public static void WritableDirectory(string what, string path)
    {
        var full = Path.GetFullPath(path);
        if (FileInTheWay(full) is string file)
            throw new UsageException(file == full ? $"{what}: {path} is a file, expected a directory"
                : $"{what}: cannot write {path}: {file} is a file, not a folder; choose another path");
        var existing = full;
        while (!Directory.Exists(existing)) existing = Path.GetDirectoryName(existing)!;
        Probe(what, path, existing);
    }

    /// <summary>The file at <paramref name="dir"/> or at one of its parents, if any.</summary>
    static string? FileInTheWay(string dir)
    {
        for (var d = dir; d is not null; d = Path.GetDirectoryName(d))
            if (File.Exists(d)) return d;
        return null;
    }

    static void Probe(string what, string path, string dir)
    {
        var probe = Path.Combine(dir, $".retinanet-probe-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose)
                .Dispose();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            string why = e is UnauthorizedAccessException ? "permission denied" : e.Message.Replace(probe, dir);
            throw new UsageException($"{what}: cannot write {path}: no new file can be made in {dir} ({why}); " +
                "make the folder writable or choose another path");
        }
    }

    public static int Positive(Option option, int v)
        => v > 0 ? v : throw new UsageException($"{option.Name} must be positive, got {v}");

    public static int NonNegative(Option option, int v)
        => v >= 0 ? v : throw new UsageException($"{option.Name} must not be negative, got {v}");

    public static double PositiveDouble(Option option, double v)
        => v > 0 ? v : throw new UsageException($"{option.Name} must be positive, got {v}");

    public static double NonNegativeDouble(Option option, double v)
        => v >= 0 ? v : throw new UsageException($"{option.Name} must not be negative, got {v}");

    public static IReadOnlyList<string> Backbones(IReadOnlyList<string> names)
    {
        foreach (var n in names)
            if (!Model.Backbones.IsKnown(n))
                throw new UsageException($"{Backbone.Name}: unknown backbone '{n}'; choose from "
                    + $"{string.Join(", ", Model.Backbones.Names)}");
        if (names.Distinct().Count() != names.Count) throw new UsageException($"{Backbone.Name}: each backbone may be "
            + "listed once");
        return names;
    }

    /// <summary>Post-processing and input size options into the model's inference settings, over the
    /// defaults.</summary>
    public static InferenceConfig InferenceSettings(InferenceOverrides given)
        => InferenceSettings(given, new InferenceConfig());

    /// <summary>The settings a run uses: an option given on the command line wins, else <paramref name="stored"/> (a
    /// checkpoint's, which are the defaults where it has none).</summary>
    public static InferenceConfig InferenceSettings(InferenceOverrides given, InferenceConfig stored)
    {
        var config = given.Apply(stored);
        try { config.Validate(); }
        catch (ArgumentException e) { throw new UsageException(e.Message); }
        return config;
    }

    public static void MultipleOf(string name, int value, int multiple)
    {
        if (value <= 0 || value % multiple != 0)
            throw new UsageException($"{name}: {value} must be a positive multiple of {multiple} (the model's stride)");
    }

    /// <summary>--with-dali (ODTK's name for its GPU data path): nvJPEG decode + augmentation on the GPU.</summary>
    public static void GpuDecode(bool withDali, TorchSharp.torch.Device device)
    {
        if (!withDali) return;
        if (device.type != TorchSharp.DeviceType.CUDA)
            throw new UsageException($"{WithDali.Name} decodes on the GPU: it needs a CUDA device (drop it to decode "
                + "on the CPU)");
        if (!Native.NvJpeg.Available) throw new UsageException($"{WithDali.Name}: {Native.NvJpeg.MissingReason}");
    }

    /// <summary>Refuses the first of <paramref name="options"/> that is given, saying <paramref name="why"/>.</summary>
    public static void Unsupported(string why, params (Option Option, bool Given)[] options)
    {
        foreach (var (option, _) in options.Where(o => o.Given))
            throw new NotYetSupportedException($"{option.Name}: {why}");
    }
}
