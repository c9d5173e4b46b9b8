using System.Diagnostics;
using System.IO.Compression;
using System.Text.Json;
using System.Xml.Linq;
using RetinaNet.Checkpoints;
using RetinaNet.Data;
using RetinaNet.Data.Imaging;
using RetinaNet.Model;
using RetinaNet.Tests.Export;
using Xunit;

namespace RetinaNet.Tests.Cli;

/// <summary>What the README promises for packages: `dotnet pack` makes the CLI a .NET tool and the library a NuGet
/// package, both at the version of Directory.Build.props, with the licence and README; the installed tool reports
/// that version and runs the demo with no NuGet cache behind it (the ImageNet weights travel in the package); an app
/// outside this repository that references the library package builds (the package's own build step makes
/// libtorch load on older Linux) and detects what the installed tool detects, and so does one on the ONNX Runtime
/// package alone (no libtorch) with the model's export.</summary>
public class PackagesTests
{
    [Fact]
    public void TheToolAndTheLibraryPackInstallAndRun()
    {
        var root = Paths.RepositoryRoot();
        var version = XDocument.Load(Path.Combine(root, "Directory.Build.props")).Descendants("Version").Single().Value;
        var dir = Paths.TempDir();
        // the library under a version of its own: NuGet's global cache keeps the first package of a version for good.
        // The packs, installs and app builds take gigabytes: gone when the test ends, as is that version's cache copy.
        string libraryVersion = $"{version}-test.{Guid.NewGuid():N}";
        try
        {
            string artifacts = Path.Combine(dir, "artifacts"), build = Path.Combine(dir, "build");
            Run("dotnet", ["pack", Path.Combine(root, "src", "RetinaNet.Cli"), "-c", "Release", "-o", artifacts,
                "--artifacts-path", build, "-nologo", "-v", "q"]);
            foreach (var library in new[] { "RetinaNet.OnnxRuntime", "RetinaNet" })
                Run("dotnet", ["pack", Path.Combine(root, "src", library), "-c", "Release", "-o", artifacts,
                    "--artifacts-path", build, "-nologo", "-v", "q", $"-p:PackageVersion={libraryVersion}"]);

            foreach (var (id, packageVersion) in new[] { ("retinanet", version), ("retinanet.linux-x64", version),
                ("RetinaNet.Core", libraryVersion), ("RetinaNet.OnnxRuntime", libraryVersion) })
            {
                var package = Path.Combine(artifacts, $"{id}.{packageVersion}.nupkg");
                Assert.True(File.Exists(package), $"{package} was not packed: " +
                    $"{string.Join(", ", Directory.GetFiles(artifacts).Select(Path.GetFileName))}");
                using var zip = ZipFile.OpenRead(package);
                var spec = XDocument.Load(zip.Entries.Single(e => e.FullName.EndsWith(".nuspec")).Open());
                string Field(string name) =>
                    spec.Descendants().FirstOrDefault(e => e.Name.LocalName == name)?.Value ?? "";
                Assert.Equal(packageVersion, Field("version"));
                Assert.Equal("MIT", Field("license"));
                Assert.Equal("README.md", Field("readme"));
                if (id != "retinanet") Assert.Contains(zip.Entries, e => e.FullName == "LICENSE");
                var dependencies = spec.Descendants().Where(e => e.Name.LocalName == "dependency")
                    .Select(e => e.Attribute("id")!.Value).ToList();
                if (id == "RetinaNet.OnnxRuntime")
                    Assert.DoesNotContain(dependencies, d => d.StartsWith("TorchSharp") || d.StartsWith("libtorch"));
                if (id == "RetinaNet.Core") Assert.Contains("RetinaNet.OnnxRuntime", dependencies);
            }

            // the tool, installed as the README says, with no NuGet cache and an empty weights cache
            string tools = Path.Combine(dir, "tools"), empty = Path.Combine(dir, "empty-nuget"),
                torchHome = Path.Combine(dir, "torch-home");
            Directory.CreateDirectory(empty);
            Run("dotnet", ["tool", "install", "retinanet", "--tool-path", tools, "--add-source", artifacts,
                "--version", version]);
            var retinanet = Path.Combine(tools, "retinanet");
            Assert.StartsWith($"retinanet {version} (", Run(retinanet, ["--version"]));
            var isolated = new Dictionary<string, string> { ["NUGET_PACKAGES"] = empty, ["TORCH_HOME"] = torchHome };
            var demo = Path.Combine(dir, "demo");
            var demoOutput = Run(retinanet, ["demo", "--iters", "5", "--output", demo], isolated);
            Assert.Contains("Converting the ImageNet ResNet18", demoOutput); // from the copy in the tool package
            Assert.True(File.Exists(Path.Combine(demo, "model.pth"))
                && File.Exists(Path.Combine(demo, "detections.png")), demoOutput);

            // an app of a user's own, outside this repository, on the library package
            var (model, image) = ModelAndImage(dir);
            var printed = BuildAndRun(Path.Combine(dir, "app"), artifacts, "RetinaNet.Core", libraryVersion,
                File.ReadAllText(Path.Combine(root, "samples", "DetectObjects", "Program.cs")), model, image);
            // an app that only deploys: the ONNX Runtime package alone (no libtorch in its output)
            // on the model's export
            var onnx = Path.Combine(dir, "m.onnx");
            Run(retinanet, ["export", model, onnx, "--size", "128", "128", "--full-precision"]);
            var deployed = BuildAndRun(Path.Combine(dir, "deploy"), artifacts,
                "RetinaNet.OnnxRuntime", libraryVersion, """
                using RetinaNet.OnnxRuntime;
                using var detector = OrtDetector.Load(args[0]);
                foreach (var d in detector.Detect(args[1]))
                    Console.WriteLine($"{args[1]}: {d.Name} {d.Score:F3} at x={d.X:F1} y={d.Y:F1} w={d.Width:F1} h={d.Height:F1}");
                """, onnx, image);
            Assert.Empty(Directory.GetFiles(Path.Combine(dir, "deploy"), "libtorch*", SearchOption.AllDirectories));
            Assert.Equal(ToolLines(retinanet, dir, model, image), printed);
            Assert.Equal(ToolLines(retinanet, dir, onnx, image), deployed);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
            foreach (var id in new[] { "retinanet.core", "retinanet.onnxruntime" })
                if (Path.Combine(NuGetCache(), id, libraryVersion) is var cached && Directory.Exists(cached))
                    Directory.Delete(cached, recursive: true);
        }
    }

    static string NuGetCache() => Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } cache ? cache
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");

    /// <summary>What the installed tool's <c>infer</c> finds in the image, printed as the sample prints it.</summary>
    static string[] ToolLines(string retinanet, string dir, string model, string image)
    {
        var json = Path.Combine(dir, Path.GetFileName(model) + ".json");
        Run(retinanet, ["infer", model, "--images", image, "--output", json]);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var detections = doc.RootElement.GetProperty("annotations").EnumerateArray().ToList();
        Assert.NotEmpty(detections);
        return detections.Select(d =>
        {
            var box = d.GetProperty("bbox").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            return $"{image}: {Category(doc, d)} {d.GetProperty("score").GetDouble():F3} " +
                $"at x={box[0]:F1} y={box[1]:F1} w={box[2]:F1} h={box[3]:F1}";
        }).ToArray();
    }

    /// <summary>Builds a console app of a user's own, outside this repository, on a package from
    /// <paramref name="artifacts"/>, and runs it on a model and an image; its output lines.</summary>
    static string[] BuildAndRun(string app, string artifacts, string package, string version, string program,
        string model, string image)
    {
        Directory.CreateDirectory(app);
        File.WriteAllText(Path.Combine(app, "Program.cs"), program);
        File.WriteAllText(Path.Combine(app, "App.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="{package}" Version="{version}" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
            <configuration>
              <packageSources>
                <add key="artifacts" value="{artifacts}" />
              </packageSources>
            </configuration>
            """);
        Run("dotnet", ["build", app, "-c", "Release", "-o", Path.Combine(app, "out"), "-nologo", "-v", "q"]);
        return Run("dotnet", [Path.Combine(app, "out", "App.dll"), model, image])
            .Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    static string Category(JsonDocument doc, JsonElement detection)
    {
        long id = detection.GetProperty("category_id").GetInt64();
        return doc.RootElement.GetProperty("categories").EnumerateArray()
            .Single(c => c.GetProperty("id").GetInt64() == id).GetProperty("name").GetString()!;
    }

    /// <summary>A model with named categories and a low threshold, and a noise image it finds objects in.</summary>
    static (string Model, string Image) ModelAndImage(string dir)
    {
        var model = Path.Combine(dir, "m.pth");
        using (var m = ExportFixtures.Model("ResNet18FPN"))
        {
            m.UseCategories([new(3, "cell"), new(5, "nucleus"), new(8, "debris")]);
            m.UseInferenceSettings(new InferenceConfig { Resize = 128, MaxSize = 128, ScoreThreshold = 0.05 });
            Checkpoint.Save(model, m);
        }
        var pixels = new byte[128 * 96 * 3];
        new Random(3).NextBytes(pixels);
        var image = Path.Combine(dir, "noise.png");
        ImageEncoder.SavePng(new RgbImage(128, 96, pixels), image);
        return (model, image);
    }

    static string Run(string file, string[] args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) start.Environment[name] = value;
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0,
            $"{file} {string.Join(' ', args)} exited with {process.ExitCode}:\n{stdout}{stderr.Result}");
        return stdout;
    }
}
