using System.Text.Json;
using RetinaNet.Checkpoints;
using RetinaNet.Cli;
using RetinaNet.Data;
using RetinaNet.Data.Imaging;
using RetinaNet.Model;
using RetinaNet.Tests.Export;
using Xunit;

namespace RetinaNet.Tests.Cli;

/// <summary><c>infer --images</c> takes a folder, one image, a glob or a list file, and <c>--output -</c> streams JSON
/// Lines: every form gives, for each image, what the folder run gives for it (batch 1, so no image is padded with
/// another); ids and names are the model's categories when no annotation file is given.</summary>
[Collection("global torch RNG")] // bitwise comparisons: not alongside a CPU training (see DetectorTests)
public class InferInputsTests
{
    static readonly Category[] Categories = [new(7, "cat"), new(42, "dog"), new(90, "bird")];

    static readonly Lazy<(string Dir, string Model)> Shared = new(() =>
    {
        var dir = Paths.TempDir();
        var model = Path.Combine(dir, "m.pth");
        using (var m = ExportFixtures.Model("ResNet18FPN"))
        {
            m.UseCategories(Categories);
            m.UseInferenceSettings(new InferenceConfig { Resize = 128, MaxSize = 256, ScoreThreshold = 0.1 });
            Checkpoint.Save(model, m);
        }
        var random = new Random(5);
        foreach (var (name, w, h) in new[] { ("a/1.png", 120, 90), ("a/2.png", 100, 140), ("b/3.png", 130, 110) })
        {
            var pixels = new byte[w * h * 3];
            random.NextBytes(pixels);
            var path = Path.Combine(dir, "images", name);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            ImageEncoder.SavePng(new RgbImage(w, h, pixels), path);
        }
        File.WriteAllText(Path.Combine(dir, "images", "a", "notes.txt"), "not an image");
        return (dir, model);
    }, LazyThreadSafetyMode.ExecutionAndPublication);

    static (int Code, string Stdout, string Stderr) Infer(string images, params string[] more)
    {
        var (_, model) = Shared.Value;
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        int code = CommandLine.Run(["infer", model, "--images", images, "--device", "cpu", "--batch", "1", .. more],
            stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Detections of an ODTK detections file by image file name (its last path component).</summary>
    static Dictionary<string, List<(long Category, double Score, double[] Box)>> Read(string file)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
        var names = doc.RootElement.GetProperty("images").EnumerateArray()
            .ToDictionary(i => i.GetProperty("id").GetInt64(),
                i => Path.GetFileName(i.GetProperty("file_name").GetString()!));
        var result = names.Values.ToDictionary(n => n, _ => new List<(long, double, double[])>());
        foreach (var d in doc.RootElement.GetProperty("annotations").EnumerateArray())
            result[names[d.GetProperty("image_id").GetInt64()]].Add((d.GetProperty("category_id").GetInt64(),
                d.GetProperty("score").GetDouble(),
                d.GetProperty("bbox").EnumerateArray().Select(v => v.GetDouble()).ToArray()));
        return result;
    }

    static Dictionary<string, List<(long Category, double Score, double[] Box)>> Folder()
    {
        var (dir, _) = Shared.Value;
        var output = Path.Combine(Paths.TempDir(), "folder.json");
        Assert.Equal(0, Infer(Path.Combine(dir, "images"), "--output", output).Code);
        return Read(output);
    }

    static void SameAs(Dictionary<string, List<(long Category, double Score, double[] Box)>> expected,
        Dictionary<string, List<(long Category, double Score, double[] Box)>> found, params string[] images)
    {
        Assert.Equal(images.Order(), found.Keys.Order());
        foreach (var image in images)
        {
            Assert.NotEmpty(expected[image]);
            Assert.Equal(expected[image].Count, found[image].Count);
            for (int i = 0; i < found[image].Count; i++)
            {
                Assert.Equal(expected[image][i].Category, found[image][i].Category);
                Assert.Equal(expected[image][i].Score, found[image][i].Score);
                Assert.Equal(expected[image][i].Box, found[image][i].Box);
            }
        }
    }

    [Fact]
    public void AnImageAGlobAndAListGiveWhatTheFolderGives()
    {
        var (dir, _) = Shared.Value;
        var folder = Folder();
        Assert.Equal(["1.png", "2.png", "3.png"], folder.Keys.Order());
        Assert.All(folder.Values.SelectMany(v => v), d => Assert.Contains(d.Category, Categories.Select(c => c.Id)));
        var work = Paths.TempDir();

        string single = Path.Combine(work, "single.json");
        Assert.Equal(0, Infer(Path.Combine(dir, "images", "a", "2.png"), "--output", single).Code);
        SameAs(folder, Read(single), "2.png");

        string glob = Path.Combine(work, "glob.json");
        Assert.Equal(0, Infer(Path.Combine(dir, "images", "a", "*.png"), "--output", glob).Code);
        SameAs(folder, Read(glob), "1.png", "2.png");
        Assert.Equal(0, Infer(Path.Combine(dir, "images", "**", "*.PNG"), "--output", glob).Code);
        SameAs(folder, Read(glob), "1.png", "2.png", "3.png");

        var list = Path.Combine(dir, "images", "list.txt");
        File.WriteAllText(list, "# images to check\nb/3.png\n\n" + Path.Combine(dir, "images", "a", "1.png") + "\n");
        string listed = Path.Combine(work, "list.json");
        Assert.Equal(0, Infer(list, "--output", listed).Code);
        SameAs(folder, Read(listed), "1.png", "3.png");
    }

    [Fact]
    public void JsonLinesOnStdoutCarryOnlyResults()
    {
        var (dir, _) = Shared.Value;
        var folder = Folder();
        var (code, stdout, stderr) = Infer(Path.Combine(dir, "images"), "--output", "-");
        Assert.Equal(0, code);
        Assert.Contains("Running inference on 3 images", stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        var names = Categories.ToDictionary(c => c.Id, c => c.Name);
        foreach (var line in lines)
        {
            using var doc = JsonDocument.Parse(line);
            var image = Path.GetFileName(doc.RootElement.GetProperty("file_name").GetString()!);
            var detections = doc.RootElement.GetProperty("detections").EnumerateArray().ToList();
            Assert.Equal(folder[image].Count, detections.Count);
            for (int i = 0; i < detections.Count; i++)
            {
                long id = detections[i].GetProperty("category_id").GetInt64();
                Assert.Equal(folder[image][i].Category, id);
                Assert.Equal(names[id], detections[i].GetProperty("name").GetString());
                Assert.Equal(folder[image][i].Score, detections[i].GetProperty("score").GetDouble());
            }
        }
    }

    [Fact]
    public void BadInputsAreOneLineNamingTheFileBeforeAnyWork()
    {
        var (dir, _) = Shared.Value;
        var list = Path.Combine(Paths.TempDir(), "list.txt");
        File.WriteAllText(list, Path.Combine(dir, "images", "a", "1.png") + "\nmissing.png\n");
        var cases = new (string Images, string Expected)[]
        {
            (list, $"{list}: line 2: missing.png not found"),
            (Path.Combine(dir, "images", "*.jpg"), "matches no images"),
            (Path.Combine(dir, "nowhere"), "does not exist; give a folder of images, an image file, a glob"),
            (Path.Combine(dir, "images", "a", "notes.txt"), "lists no image paths"),
        };
        File.WriteAllText(Path.Combine(dir, "images", "a", "notes.txt"), "# nothing\n");
        foreach (var (images, expected) in cases)
        {
            var (code, stdout, stderr) = Infer(images, "--output", Path.Combine(Paths.TempDir(), "x.json"));
            Assert.NotEqual(0, code);
            Assert.Contains(expected, stderr);
            Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.DoesNotContain("Running inference", stdout + stderr);
        }
    }
}
