using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json;
using RetinaNet.Checkpoints;
using RetinaNet.Cli;
using RetinaNet.Data;
using RetinaNet.Data.Imaging;
using RetinaNet.Tests.Export;
using Xunit;

namespace RetinaNet.Tests.Checkpoints;

/// <summary>Published checkpoints by name, served here from a local HTTP server on 127.0.0.1 (no internet): downloaded
/// once into the cache and unpacked from their zip (<c>infer odtk:NAME</c> then detects what the file itself does), an
/// interrupted download resumed with a range request, a checksum mismatch refused with nothing left behind.
/// The catalogue's environment variables are process-wide, and one test compares two CPU inferences byte for byte,
/// which a CPU training running beside it would put on other convolution kernels (<c>CpuNumerics.ExactGradients</c>
/// switches oneDNN off for the whole process; equal to rounding only): these tests run alone.</summary>
[Collection("global torch RNG")]
public class ModelCatalogTests
{
    /// <summary>Serves files by path with HTTP ranges; <see cref="CutAfter"/> makes the next full response stop after
    /// that many bytes (a dropped connection).</summary>
    sealed class FileServer : IDisposable
    {
        readonly HttpListener listener = new();
        public Dictionary<string, byte[]> Files { get; } = [];
        public List<string> Requests { get; } = [];
        public long? CutAfter { get; set; }
        public string Address { get; }

        public FileServer()
        {
            var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            int port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            Address = $"http://127.0.0.1:{port}";
            listener.Prefixes.Add(Address + "/");
            listener.Start();
            _ = Task.Run(Serve);
        }

        async Task Serve()
        {
            while (listener.IsListening)
            {
                HttpListenerContext context;
                try { context = await listener.GetContextAsync(); }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException) { return; }
                var path = context.Request.Url!.AbsolutePath;
                var range = context.Request.Headers["Range"];
                lock (Requests) Requests.Add($"{path} {range}");
                var response = context.Response;
                if (!Files.TryGetValue(path, out var bytes)) { response.StatusCode = 404; response.Close(); continue; }
                long from = range is not null && range.StartsWith("bytes=") ? long.Parse(range[6..].TrimEnd('-')) : 0;
                if (from >= bytes.Length) { response.StatusCode = 416; response.Close(); continue; }
                response.StatusCode = from > 0 ? 206 : 200;
                response.ContentLength64 = bytes.Length - from;
                long send = CutAfter is long cut && from == 0 ? cut : bytes.Length - from;
                try
                {
                    await response.OutputStream.WriteAsync(bytes.AsMemory((int)from, (int)send));
                    if (send < bytes.Length - from) { CutAfter = null; response.Abort(); continue; }
                    response.Close();
                }
                catch (Exception e) when (e is HttpListenerException or IOException) { }
            }
        }

        public void Dispose() => listener.Close();
    }

    sealed class Environment : IDisposable
    {
        readonly Dictionary<string, string?> saved = [];

        public Environment(params (string Name, string Value)[] values)
        {
            foreach (var (name, value) in values)
            {
                saved[name] = System.Environment.GetEnvironmentVariable(name);
                System.Environment.SetEnvironmentVariable(name, value);
            }
        }

        public void Dispose()
        {
            foreach (var (name, value) in saved) System.Environment.SetEnvironmentVariable(name, value);
        }
    }

    static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>Random bytes served as /m.pth, and a catalogue entry for them with <paramref name="sha256"/> (null:
    /// theirs).</summary>
    static (byte[] Bytes, FileServer Server, CatalogModel Entry) ServedFile(int length, int seed, string? sha256 = null)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        var server = new FileServer();
        server.Files["/m.pth"] = bytes;
        return (bytes, server,
            new CatalogModel("m", "ResNet18FPN", 0, server.Address + "/m.pth", sha256 ?? Sha256(bytes)));
    }

    [Fact]
    public void InferByNameDownloadsOnceUnpacksAndDetectsWhatTheFileDetects()
    {
        var dir = Paths.TempDir();
        var checkpoint = Path.Combine(dir, "retinanet_rn18fpn.pth");
        using (var m = ExportFixtures.Model("ResNet18FPN"))
        {
            m.UseInferenceSettings(new RetinaNet.Model.InferenceConfig { Resize = 128, MaxSize = 128 });
            Checkpoint.Save(checkpoint, m);
        }
        var zip = new MemoryStream();
        using (var archive = new ZipArchive(zip, ZipArchiveMode.Create, leaveOpen: true))
            archive.CreateEntryFromFile(checkpoint, "retinanet_rn18fpn/retinanet_rn18fpn.pth");
        var images = Path.Combine(dir, "images");
        Directory.CreateDirectory(images);
        var pixels = new byte[128 * 96 * 3];
        new Random(2).NextBytes(pixels);
        ImageEncoder.SavePng(new RgbImage(128, 96, pixels), Path.Combine(images, "a.png"));

        using var server = new FileServer();
        server.Files["/19.04/retinanet_rn18fpn.zip"] = zip.ToArray();
        var cache = Path.Combine(dir, "cache");
        using var environment = new Environment((ModelCatalog.MirrorVariable, server.Address),
            (ModelCatalog.CacheVariable, cache));

        string byName = Path.Combine(dir, "by-name.json"), byFile = Path.Combine(dir, "by-file.json");
        var stderr = new StringWriter();
        Assert.Equal(0, CommandLine.Run(["infer", "odtk:resnet18fpn", "--images", images, "--output", byName],
            TextWriter.Null, stderr));
        Assert.Contains($"Downloading {server.Address}/19.04/retinanet_rn18fpn.zip", stderr.ToString());
        var cached = Path.Combine(cache, "models", "resnet18fpn.pth");
        Assert.Equal(File.ReadAllBytes(checkpoint), File.ReadAllBytes(cached));
        Assert.False(File.Exists(Path.Combine(cache, "models", "resnet18fpn.zip")), "the zip is removed once unpacked");

        // again: from the cache, no request
        Assert.Equal(0, CommandLine.Run(["infer", "odtk:ResNet18FPN", "--images", images, "--output", byName],
            TextWriter.Null, TextWriter.Null));
        Assert.Single(server.Requests);
        Assert.Equal(0, CommandLine.Run(["infer", checkpoint, "--images", images, "--output", byFile],
            TextWriter.Null, TextWriter.Null));
        static string Annotations(string path) =>
            JsonDocument.Parse(File.ReadAllText(path)).RootElement.GetProperty("annotations").GetRawText();
        Assert.Equal(Annotations(byFile), Annotations(byName));

        // a damaged cache file is fetched again
        File.WriteAllBytes(cached, [1, 2, 3]);
        Assert.Equal(0, CommandLine.Run(["infer", "odtk:resnet18fpn", "--images", images, "--output", byName],
            TextWriter.Null, TextWriter.Null));
        Assert.Equal(2, server.Requests.Count);
        Assert.Equal(File.ReadAllBytes(checkpoint), File.ReadAllBytes(cached));
    }

    [Fact]
    public void AnInterruptedDownloadResumesWhereItStopped()
    {
        var (bytes, server, entry) = ServedFile(3_000_000, seed: 4);
        using var _ = server;
        server.CutAfter = 1_200_000;
        using var environment = new Environment((ModelCatalog.CacheVariable, Paths.TempDir()));

        Assert.ThrowsAny<Exception>(() => ModelCatalog.Fetch(entry, TextWriter.Null));
        var part = ModelCatalog.CachedPath(entry) + ".part";
        Assert.True(File.Exists(part), "what arrived is kept");
        long kept = new FileInfo(part).Length;
        Assert.InRange(kept, 1, bytes.Length - 1);
        Assert.False(File.Exists(ModelCatalog.CachedPath(entry)));

        var progress = new StringWriter();
        var path = ModelCatalog.Fetch(entry, progress);
        Assert.Equal(bytes, File.ReadAllBytes(path));
        Assert.Equal($"/m.pth bytes={kept}-", server.Requests[^1]);
        Assert.Contains($"Resuming {server.Address}/m.pth at", progress.ToString());
        Assert.False(File.Exists(part));
    }

    [Fact]
    public void AChecksumMismatchIsRefusedAndNothingIsKept()
    {
        var dir = Paths.TempDir();
        var (bytes, server, wrong) = ServedFile(100_000, seed: 5, sha256: new string('0', 64));
        using var _ = server;
        using var environment = new Environment((ModelCatalog.CacheVariable, dir));
        var refused = Assert.Throws<InvalidDataException>(() => ModelCatalog.Fetch(wrong, TextWriter.Null));
        Assert.Contains($"SHA-256 {Sha256(bytes)}, expected {new string('0', 64)}", refused.Message);
        Assert.Empty(Directory.GetFiles(Path.Combine(dir, "models")));

        var right = wrong with { Sha256 = Sha256(bytes) };
        Assert.Equal(bytes, File.ReadAllBytes(ModelCatalog.Fetch(right, TextWriter.Null)));
    }

    [Fact]
    public void TheCatalogueIsListedAndUnknownNamesAreRefusedBeforeAnyDownload()
    {
        var stdout = new StringWriter();
        Assert.Equal(0, CommandLine.Run(["models"], stdout, TextWriter.Null));
        foreach (var m in ModelCatalog.Models) Assert.Contains($"odtk:{m.Name}", stdout.ToString());
        var stderr = new StringWriter();
        Assert.Equal(2, CommandLine.Run(["infer", "odtk:resnet9000", "--images", "."], TextWriter.Null, stderr));
        Assert.Contains("odtk:resnet9000: no such model; the catalogue has odtk:resnet18fpn", stderr.ToString());
    }
}
