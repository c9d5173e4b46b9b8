using System.Reflection;

namespace RetinaNet.Native;

/// <summary>The CUDA C text of our kernels: each lives in a .cu file next to the C# that launches it (shared preludes
/// in .cuh files), embedded in this assembly as <c>RetinaNet.Kernels.</c> + the file name (RetinaNet.csproj), so file
/// names are unique across folders and a duplicate fails the build.</summary>
public static class CudaSource
{
    public const string ResourcePrefix = "RetinaNet.Kernels.";

    static Assembly Assembly => typeof(CudaSource).Assembly;

    /// <summary>The embedded file's text, as it is on disk (UTF-8).</summary>
    /// <param name="fileName">the file's name without its folder, e.g. <c>NmsKernel.cu</c>.</param>
    public static string Load(string fileName)
    {
        string resource = ResourcePrefix + fileName;
        using var stream = Assembly.GetManifestResourceStream(resource) ?? throw new InvalidOperationException(
            $"the CUDA source {fileName} is not embedded in {Assembly.GetName().Name} (no resource \"{resource}\"; " +
            "RetinaNet.csproj embeds every *.cu and *.cuh file of src/RetinaNet)");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    /// <summary>File names of every embedded CUDA source.</summary>
    public static IReadOnlyList<string> All =>
        [.. Assembly.GetManifestResourceNames().Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal))
            .Select(n => n[ResourcePrefix.Length..]).Order(StringComparer.Ordinal)];
}
