using System.IO.Compression;
using RetinaNet.Core;

namespace RetinaNet.Checkpoints;

/// <summary>A published checkpoint: its name (<c>odtk:NAME</c> wherever a model file goes), backbone, COCO AP as
/// published, where it is, and its SHA-256 when known (null: recorded at the first download and checked
/// after).</summary>
public sealed record CatalogModel(string Name, string Backbone, double CocoAp, string Url, string? Sha256);

/// <summary>ODTK's COCO checkpoints by name: downloaded once into a cache (resumed when interrupted), checked, unpacked
/// from their zip, then loaded like any ODTK checkpoint. <c>RETINANET_MODELS_MIRROR</c> replaces ODTK's release address
/// (a mirror inside a network without GitHub); <c>RETINANET_CACHE</c> moves the cache.</summary>
public static class ModelCatalog
{
    public const string Prefix = "odtk:";
    public const string MirrorVariable = "RETINANET_MODELS_MIRROR", CacheVariable = UserCache.Variable;
    /// <summary>ODTK's release downloads, which <see cref="MirrorVariable"/> replaces.</summary>
    public const string Releases = "https://github.com/NVIDIA/retinanet-examples/releases/download";

    /// <summary>ODTK's README (COCO 2017 val AP at resize 800). Their SHA-256s are not published; this build has not
    /// been able to fetch them, so each is recorded at its first download.</summary>
    public static IReadOnlyList<CatalogModel> Models { get; } =
    [
        new("resnet18fpn", "ResNet18FPN", 0.318, $"{Releases}/19.04/retinanet_rn18fpn.zip", null),
        new("mobilenetv2fpn", "MobileNetV2FPN", 0.333, $"{Releases}/v0.2.3/retinanet_mobilenetv2fpn.pth", null),
        new("resnet34fpn", "ResNet34FPN", 0.343, $"{Releases}/19.04/retinanet_rn34fpn.zip", null),
        new("resnet50fpn", "ResNet50FPN", 0.358, $"{Releases}/19.04/retinanet_rn50fpn.zip", null),
        new("resnet101fpn", "ResNet101FPN", 0.376, $"{Releases}/19.04/retinanet_rn101fpn.zip", null),
        new("resnet152fpn", "ResNet152FPN", 0.393, $"{Releases}/19.04/retinanet_rn152fpn.zip", null),
    ];

    public static string CacheDirectory => Path.Combine(UserCache.Directory, "models");

    /// <summary>Whether a model argument names a catalogue model rather than a file.</summary>
    public static bool IsReference(string model) => model.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase);

    /// <summary>The catalogue entry of <c>odtk:NAME</c>; one line listing the names when there is none.</summary>
    public static CatalogModel Find(string reference, IReadOnlyList<CatalogModel>? models = null)
    {
        var name = reference[Prefix.Length..];
        return (models ?? Models).FirstOrDefault(m => m.Name.Equals(name, StringComparison.OrdinalIgnoreCase))
            ?? throw new ArgumentException($"{reference}: no such model; the catalogue has "
            + $"{string.Join(", ", (models ?? Models).Select(m => Prefix + m.Name))} (retinanet models)");
    }

    /// <summary>Where the entry's checkpoint lives in the cache (present or not).</summary>
    public static string CachedPath(CatalogModel model) => Path.Combine(CacheDirectory, model.Name + ".pth");

    /// <summary>The address to download from: the entry's, under <c>RETINANET_MODELS_MIRROR</c> when set.</summary>
    public static string SourceUrl(CatalogModel model) =>
        Environment.GetEnvironmentVariable(MirrorVariable) is { Length: > 0 } mirror
            && model.Url.StartsWith(Releases, StringComparison.Ordinal)
            ? mirror.TrimEnd('/') + model.Url[Releases.Length..] : model.Url;

    /// <summary>The local checkpoint of <paramref name="model"/>, downloading and unpacking it when it is not cached.
    /// The SHA-256 of the cached checkpoint is kept beside it (<c>.sha256</c>) and checked at every use, so a damaged
    /// cache file is fetched again.</summary>
    public static string Fetch(CatalogModel model, TextWriter progress, HttpClient? http = null)
    {
        var path = CachedPath(model);
        var sum = path + ".sha256";
        if (File.Exists(path) && File.Exists(sum) && File.ReadAllText(sum).Trim() == Download.Sha256(path)) return path;
        Directory.CreateDirectory(CacheDirectory);
        var url = SourceUrl(model);
        bool zip = url.EndsWith(".zip", StringComparison.OrdinalIgnoreCase);
        var fetched = zip ? Path.Combine(CacheDirectory, model.Name + ".zip") : path;
        var hash = Download.To(url, fetched, model.Sha256, progress, http);
        if (model.Sha256 is null) progress.WriteLine($"{Prefix}{model.Name}: SHA-256 {hash} (not published; recorded)");
        if (zip)
        {
            Unpack(fetched, path);
            File.Delete(fetched);
            hash = Download.Sha256(path);
        }
        AtomicFile.Write(sum, file => file.Write(System.Text.Encoding.ASCII.GetBytes(hash)));
        return path;
    }

    /// <summary>The one .pth file of an ODTK release zip, written into place atomically.</summary>
    static void Unpack(string zipPath, string path)
    {
        using var archive = ZipFile.OpenRead(zipPath);
        var entries = archive.Entries.Where(e => e.FullName.EndsWith(".pth",
            StringComparison.OrdinalIgnoreCase)).ToList();
        if (entries.Count != 1)
            throw new InvalidDataException($"{zipPath}: expected one .pth checkpoint in the archive, found "
                + $"{entries.Count}");
        AtomicFile.Write(path, file =>
        {
            using var entry = entries[0].Open();
            entry.CopyTo(file);
        });
    }
}
