using RetinaNet.Model;

namespace RetinaNet.Training;

/// <summary>torchvision's ImageNet weights for a backbone, as a first training run without --backbone-weights needs
/// them: found in the torch hub cache (shared with PyTorch), else downloaded there with a progress line; where there
/// is no network the error says exactly which file to put where. ResNet18 falls back to the ImageNet weights of a
/// NuGet package (<see cref="PackagedResNet18"/>) where the download fails.</summary>
public static class PretrainedWeights
{
    static readonly IReadOnlyDictionary<string, string> Files = new Dictionary<string, string>
    {
        ["resnet18"] = "resnet18-f37072fd.pth", ["resnet34"] = "resnet34-b627a593.pth",
            ["resnet50"] = "resnet50-0676ba61.pth",
        ["resnet101"] = "resnet101-63fe2227.pth", ["resnet152"] = "resnet152-394f9c45.pth",
        ["resnext50_32x4d"] = "resnext50_32x4d-7cdf4587.pth", ["resnext101_32x8d"] = "resnext101_32x8d-8ba56ff5.pth",
        ["mobilenet_v2"] = "mobilenet_v2-b0353104.pth",
    };

    public static string CacheDirectory =>
        Environment.GetEnvironmentVariable("TORCH_HOME") is { Length: > 0 } home
            ? Path.Combine(home, "hub", "checkpoints")
        : Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "torch", "hub",
            "checkpoints");

    public static string Url(string backbone)
        => $"https://download.pytorch.org/models/{Files[Backbones.TorchvisionNames[backbone]]}";

    /// <summary>The cached file for the backbone, downloading it first when missing.</summary>
    public static string Locate(string backbone, TextWriter progress)
    {
        var file = Files[Backbones.TorchvisionNames[backbone]];
        var path = Path.Combine(CacheDirectory, file);
        if (File.Exists(path)) return path;
        Directory.CreateDirectory(CacheDirectory);
        var url = Url(backbone);
        try
        {
            // torchvision's file names carry the first hex digits of their SHA-256 (what its hub checks)
            Core.Download.To(url, path, file.Split('-', '.')[^2], progress);
            return path;
        }
        catch (Exception e)
            when (e is HttpRequestException or TaskCanceledException or IOException or InvalidDataException)
        {
            if (Backbones.TorchvisionNames[backbone] == "resnet18"
                && PackagedResNet18.Locate(progress) is string packaged)
            {
                progress.WriteLine($"Could not download {url} ({e.Message.Split('\n')[0]}); using NuGet's packaged "
                    + "ImageNet ResNet18 instead");
                return packaged;
            }
            throw new IOException($"could not download the ImageNet weights of {backbone} "
                + $"({e.Message.Split('\n')[0]}); without network, " +
                $"fetch {url} elsewhere and place it at {path}, or pass --backbone-weights FILE (or --backbone-weights "
                    + "none to start from random weights)");
        }
    }
}
