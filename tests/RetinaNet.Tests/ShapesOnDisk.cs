using RetinaNet.Data.Imaging;
using RetinaNet.Data.Synthetic;

namespace RetinaNet.Tests;

/// <summary>A small synthetic COCO dataset written where a test needs files: PNG images and annotations JSON.</summary>
static class ShapesOnDisk
{
    public static (string Annotations, string Images) Write(string dir, int count, int size, int seed,
        string annotationsName = "train.json")
    {
        var (coco, images) = ShapesDataset.Generate(count, size, seed, Path.Combine(dir, annotationsName));
        var imageDir = Path.Combine(dir, "images");
        Directory.CreateDirectory(imageDir);
        foreach (var (name, image) in images) ImageEncoder.SavePng(image, Path.Combine(imageDir, name));
        coco.Save(coco.Path);
        return (coco.Path, imageDir);
    }
}
