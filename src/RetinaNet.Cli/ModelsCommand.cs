using RetinaNet.Checkpoints;

namespace RetinaNet.Cli;

/// <summary>(ours) <c>retinanet models</c>: the catalogue of published checkpoints usable as <c>odtk:NAME</c> wherever
/// a model file goes, and which of them are cached.</summary>
static class ModelsCommand
{
    public static CommandSpec Spec()
        => new("models",
        "(ours) The published COCO checkpoints (ODTK's) usable as odtk:NAME wherever a model file goes; downloaded "
        + "once into a cache.", [], []);

    public static int Run(TextWriter stdout)
    {
        stdout.WriteLine($"{"model",-20} {"backbone",-15} {"COCO AP",7}  cached");
        foreach (var m in ModelCatalog.Models)
        {
            var path = ModelCatalog.CachedPath(m);
            stdout.WriteLine($"{ModelCatalog.Prefix + m.Name,-20} {m.Backbone,-15} {m.CocoAp,7:F3}  "
                + $"{(File.Exists(path) ? path : "no")}");
        }
        stdout.WriteLine($"Sources: ODTK's releases ({ModelCatalog.Releases}), " +
            $"or ${ModelCatalog.MirrorVariable}; cache: {ModelCatalog.CacheDirectory} (${ModelCatalog.CacheVariable} "
                + "moves it).");
        stdout.WriteLine("Example: retinanet infer odtk:resnet50fpn --images photos/ --output detections.json");
        return CommandLine.Ok;
    }
}
