using Microsoft.Extensions.FileSystemGlobbing;
using Microsoft.Extensions.FileSystemGlobbing.Abstractions;

namespace RetinaNet.Data;

/// <summary>What <c>infer --images</c> accepts: a folder (every image under it), one image file, a glob
/// (<c>photos/*.jpg</c>, <c>**</c> for any depth), or a text file listing image paths (one a line, <c>#</c> comments,
/// relative paths from the list's folder). Every file is checked before any work starts.</summary>
public static class ImageInputs
{
    const string Forms =
        "give a folder of images, an image file, a glob such as 'photos/*.jpg', or a .txt file listing image paths";
    static string Extensions => string.Join(" ", ImageFolder.Extensions);

    public static DetectionDataset Resolve(string spec)
    {
        if (Directory.Exists(spec)) return DetectionDataset.FromFolder(spec);
        if (IsGlob(spec)) return DetectionDataset.FromFiles(Glob(spec));
        if (!File.Exists(spec)) throw new BadInputException(spec, $"not found; {Forms}");
        if (ImageFolder.IsImage(spec)) return DetectionDataset.FromFiles([spec]);
        if (spec.EndsWith(".txt", StringComparison.OrdinalIgnoreCase)) return DetectionDataset.FromFiles(List(spec));
        throw new BadInputException(spec, $"is neither an image ({Extensions}) nor a .txt list; {Forms}");
    }

    static bool IsGlob(string spec) => spec.IndexOfAny(['*', '?']) >= 0;

    /// <summary>The images a glob matches, sorted (ordinal) so the order is the same on every machine.</summary>
    static List<string> Glob(string spec)
    {
        // the folder part before the first wildcard is the root; the rest is the pattern
        var parts = spec.Replace('\\', '/').Split('/');
        int first = Array.FindIndex(parts, p => IsGlob(p));
        string root = first == 0 ? "." : string.Join('/', parts[..first]);
        if (root.Length == 0) root = "/";
        string pattern = string.Join('/', parts[first..]);
        if (!Directory.Exists(root)) throw new BadInputException(spec, $"folder {root} not found; {Forms}");
        var matcher = new Matcher(StringComparison.OrdinalIgnoreCase);
        matcher.AddInclude(pattern);
        var found = matcher.Execute(new DirectoryInfoWrapper(new DirectoryInfo(root))).Files
            .Select(f => Path.Combine(root, f.Path)).Where(ImageFolder.IsImage).Order(StringComparer.Ordinal).ToList();
        return found.Count > 0 ? found
            : throw new BadInputException(spec, $"matches no images ({Extensions}); check the pattern");
    }

    static List<string> List(string listFile)
    {
        var folder = Path.GetDirectoryName(Path.GetFullPath(listFile))!;
        var paths = new List<string>();
        var lines = File.ReadAllLines(listFile);
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var path = Path.IsPathRooted(line) ? line : Path.Combine(folder, line);
            if (!File.Exists(path))
                throw new BadInputException(listFile, $"line {i + 1}: {line} not found; fix or remove the line");
            paths.Add(path);
        }
        return paths.Count > 0 ? paths
            : throw new BadInputException(listFile, "lists no image paths; write one path a line");
    }
}
