using RetinaNet.Data.Coco;

namespace RetinaNet.Data;

/// <summary>The training/evaluation view of a COCO annotation file and its images folder: one <see cref="Sample"/> per
/// listed image, in file order, with its boxes as corners (see <see cref="Sample"/> for the coordinate convention) and
/// contiguous class indices. Images without annotations are kept (negatives). <para>Boxes are clipped to the image
/// when the file gives its size; boxes left with zero or negative size are dropped and counted, and one warning line
/// reports the count. Every listed image file must exist: a missing one is a <see cref="BadInputException"/>, or, with
/// <c>skipBadImages</c>, a warning line and the image left out.</para></summary>
public sealed class DetectionDataset
{
    public string ImagesDir { get; }
    /// <summary>COCO category ids ↔ class indices; empty for an image folder without annotations.</summary>
    public CategoryMap Categories { get; }
    public IReadOnlyList<Sample> Samples { get; }
    /// <summary>The COCO entry of each sample (same order): its id and <c>file_name</c> relative to
    /// <see cref="ImagesDir"/>.</summary>
    public IReadOnlyList<CocoImageInfo> Images { get; }
    public int DroppedBoxes { get; }
    public int SkippedImages { get; }

    DetectionDataset(string imagesDir, CategoryMap categories, IReadOnlyList<Sample> samples,
        IReadOnlyList<CocoImageInfo> images, int droppedBoxes, int skippedImages)
    {
        (ImagesDir, Categories, Samples, Images, DroppedBoxes, SkippedImages) =
            (imagesDir, categories, samples, images, droppedBoxes, skippedImages);
    }

    public int Count => Samples.Count;
    public Sample this[int index] => Samples[index];

    /// <param name="rotated">Read each box's angle (ODTK's bbox [x, y, w, h, theta]; 0 where a box has none), for a
    /// rotated model.</param>
    public static DetectionDataset Load(string annotationsPath, string imagesDir, TextWriter warnings,
        bool skipBadImages = false, bool rotated = false) =>
        FromCoco(CocoFile.Load(annotationsPath), imagesDir, warnings, skipBadImages, rotated);

    public static DetectionDataset FromCoco(CocoFile coco, string imagesDir, TextWriter warnings,
        bool skipBadImages = false, bool rotated = false)
    {
        if (!Directory.Exists(imagesDir))
            throw new BadInputException(imagesDir, File.Exists(imagesDir) ? "is a file, expected the folder of images"
                : "images folder not found; check --images");
        var categories = new CategoryMap(coco.Categories);
        var byImage = coco.Annotations.ToLookup(a => a.ImageId);
        var samples = new List<Sample>(coco.Images.Count);
        var kept = new List<CocoImageInfo>(coco.Images.Count);
        int dropped = 0, skipped = 0;
        foreach (var image in coco.Images)
        {
            string path = Path.Combine(imagesDir, image.FileName);
            if (MissingOrEmpty(path) is string problem)
            {
                var error = new BadInputException(path, $"{problem} (listed in {coco.Path} as id {image.Id}); " +
                    "check --images and the file_name, or skip bad images");
                if (!skipBadImages) throw error;
                warnings.WriteLine($"warning: {error.Message}; skipped");
                skipped++;
                continue;
            }
            var annotations = byImage[image.Id].ToArray();
            var boxes = new float[4 * annotations.Length];
            var classes = new int[annotations.Length];
            var angles = rotated ? new float[annotations.Length] : null;
            for (int i = 0; i < annotations.Length; i++)
            {
                var a = annotations[i];
                (boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3]) =
                    ((float)a.X, (float)a.Y, (float)(a.X + a.W), (float)(a.Y + a.H));
                classes[i] = a.IsCrowd ? Sample.Crowd : categories.ClassIndexOf(a.CategoryId);
                if (angles is not null) angles[i] = (float)(a.Theta ?? 0);
            }
            // Without a known size only the left/top edges clip now; Sample.ClipTo finishes the job once decoded.
            var (clippedBoxes, clippedClasses, clippedAngles) = Sample.Clip(boxes, classes, angles,
                image.Width ?? float.PositiveInfinity, image.Height ?? float.PositiveInfinity);
            dropped += classes.Length - clippedClasses.Length;
            samples.Add(new Sample(samples.Count, image.Id, path, image.Width, image.Height, clippedBoxes,
                clippedClasses, clippedAngles));
            kept.Add(image);
        }
        if (dropped > 0)
            warnings.WriteLine($"warning: {coco.Path}: dropped {dropped} of {coco.Annotations.Count} boxes " +
                "with zero or negative size after clipping to their image");
        if (skipped > 0)
            warnings.WriteLine(
                $"warning: {coco.Path}: skipped {skipped} of {coco.Images.Count} images (missing or empty files)");
        return new DetectionDataset(imagesDir, categories, samples, kept, dropped, skipped);
    }

    /// <summary>Every image under <paramref name="imagesDir"/> (<see cref="ImageFolder.List"/> order), without
    /// annotations, for inference: ids 0..n-1, file names relative to the folder, sizes unknown.</summary>
    public static DetectionDataset FromFolder(string imagesDir)
    {
        var names = ImageFolder.ListRelative(imagesDir);
        if (names.Count == 0) ImageFolder.List(imagesDir); // throws the "no images" error
        var images = names.Select((name, i) => new CocoImageInfo(i, name, null, null)).ToArray();
        var samples = images.Select((image, i) =>
            new Sample(i, image.Id, Path.Combine(imagesDir, image.FileName), null, null, [], [])).ToArray();
        return new DetectionDataset(imagesDir, new CategoryMap([]), samples, images, 0, 0);
    }

    /// <summary>The given image files, in order, without annotations: ids 0..n-1, file names as given.</summary>
    public static DetectionDataset FromFiles(IReadOnlyList<string> paths)
    {
        var images = paths.Select((path, i) => new CocoImageInfo(i, path, null, null)).ToArray();
        var samples = images.Select((image, i) => new Sample(i, image.Id, image.FileName, null, null, [], []))
            .ToArray();
        return new DetectionDataset("", new CategoryMap([]), samples, images, 0, 0);
    }

    static string? MissingOrEmpty(string path)
    {
        var info = new FileInfo(path);
        return !info.Exists ? "image file not found" : info.Length == 0 ? "image file is empty" : null;
    }
}
