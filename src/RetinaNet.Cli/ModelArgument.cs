using RetinaNet.Checkpoints;
using static RetinaNet.Cli.Validation;

namespace RetinaNet.Cli;

/// <summary>A MODEL argument: a file, or a catalogue model (<c>odtk:resnet50fpn</c>, <see cref="ModelCatalog"/>) that
/// is downloaded once into the cache. <see cref="Check"/> comes first (no network); <see cref="Local"/> after every
/// other input is checked.</summary>
static class ModelArgument
{
    public static void Check(string model, params string[] extensions)
    {
        if (!ModelCatalog.IsReference(model)) ExistingFile("MODEL", model, extensions);
        else
            try { ModelCatalog.Find(model); }
            catch (ArgumentException e) { throw new UsageException(e.Message); }
    }

    /// <summary>The file to open: the argument itself, or the catalogue model's cached checkpoint (fetched when
    /// missing, with progress lines on <paramref name="progress"/>).</summary>
    public static string Local(string model, TextWriter progress)
    {
        if (!ModelCatalog.IsReference(model)) return model;
        var entry = ModelCatalog.Find(model);
        try { return ModelCatalog.Fetch(entry, progress); }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            throw new IOException($"{model}: could not download {ModelCatalog.SourceUrl(entry)} "
                + $"({e.Message.Split('\n')[0]}); what arrived is kept " +
                "and the next run resumes it; without network, fetch it elsewhere and pass the file (a zip's .pth) as "
                    + $"MODEL, or set {ModelCatalog.MirrorVariable}");
        }
    }
}
