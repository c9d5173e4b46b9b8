using RetinaNet.Build;
using Xunit;

namespace RetinaNet.Tests.Build;

public class ElfVersionPatcherTests
{
    static readonly string[] Versions = ["GLIBCXX_3.4.32"];

    /// <summary>The unpatched library as NuGet ships it.</summary>
    static string Pristine()
    {
        var root = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var path = Path.Combine(root, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native",
            "libLibTorchSharp.so");
        Assert.True(File.Exists(path), $"TorchSharp's pristine native library not found at {path}");
        return path;
    }

    [Fact]
    public void MarksOnlyTheVersionFlagAndIsIdempotent()
    {
        var original = File.ReadAllBytes(Pristine());
        var patched = (byte[])original.Clone();
        Assert.Equal(Versions, ElfVersionPatcher.MarkWeak(patched, Versions));
        var differing = Enumerable.Range(0, original.Length).Where(i => original[i] != patched[i]).ToList();
        Assert.Single(differing);
        Assert.Equal(original[differing[0]] | 0x2, patched[differing[0]]); // VER_FLG_WEAK set, nothing else
        var again = (byte[])patched.Clone();
        Assert.Empty(ElfVersionPatcher.MarkWeak(again, Versions));
        Assert.Equal(patched, again);
    }

    [Fact]
    public void TheBuildPatchedTheCopyTheTestsLoad()
    {
        var copy = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.True(File.Exists(copy), copy);
        Assert.Empty(ElfVersionPatcher.MarkWeak(File.ReadAllBytes(copy), Versions)); // already weak
        Assert.NotEmpty(ElfVersionPatcher.MarkWeak(File.ReadAllBytes(Pristine()), Versions));
    }

    [Fact]
    public void FilePatchRewritesInPlaceAndRefusesNonElf()
    {
        var dir = Paths.TempDir();
        var path = Path.Combine(dir, "lib.so");
        File.Copy(Pristine(), path);
        Assert.Single(ElfVersionPatcher.MarkWeakInFile(path, Versions));
        Assert.Empty(ElfVersionPatcher.MarkWeakInFile(path, Versions));
        Assert.Equal(new FileInfo(Pristine()).Length, new FileInfo(path).Length);
        Assert.Throws<InvalidDataException>(() => ElfVersionPatcher.MarkWeak(
            "not an elf file at all, just text......................................................"u8.ToArray(),
            Versions));
    }
}
