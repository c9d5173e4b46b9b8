namespace RetinaNet.Data;

/// <summary>The image files of a folder, for inference over a folder and for format conversion.</summary>
public static class ImageFolder
{
    public static readonly IReadOnlyList<string> Extensions = [".jpg", ".jpeg", ".png", ".bmp"];

    public static bool IsImage(string path)
        => Extensions.Any(e => path.EndsWith(e, StringComparison.OrdinalIgnoreCase));

    /// <summary>Every .jpg/.jpeg/.png/.bmp file (any case) under <paramref name="dir"/>, recursively, as full paths
    /// sorted by their path relative to <paramref name="dir"/> ('/'-separated, ordinal), so the order is the same on
    /// every machine. Hidden files (such as macOS "._x.jpg" resource forks) are skipped.</summary>
    public static IReadOnlyList<string> List(string dir)
    {
        var files = ListRelative(dir);
        return files.Count > 0 ? files.Select(f => System.IO.Path.Combine(dir, f)).ToArray()
            : throw new BadInputException(dir,
            "no images (.jpg .jpeg .png .bmp) found; check the folder, or convert the images to one of these formats");
    }

    /// <summary>The same files as <see cref="List"/>, relative to <paramref name="dir"/> with '/' separators
    /// (the form COCO's <c>file_name</c> takes); empty when there are none.</summary>
    public static IReadOnlyList<string> ListRelative(string dir)
    {
        if (!Directory.Exists(dir))
            throw new BadInputException(dir, File.Exists(dir) ? "is a file, expected a folder of images"
                : "image folder not found; check the path given");
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true,
            MatchCasing = MatchCasing.CaseInsensitive };
        return Directory.EnumerateFiles(dir, "*", options).Where(IsImage)
            .Select(f => RelativeName(dir, f)).Order(StringComparer.Ordinal).ToArray();
    }

    /// <summary><paramref name="path"/> relative to <paramref name="root"/>, '/'-separated.</summary>
    public static string RelativeName(string root, string path) =>
        System.IO.Path.GetRelativePath(root, path).Replace(System.IO.Path.DirectorySeparatorChar, '/');
}
