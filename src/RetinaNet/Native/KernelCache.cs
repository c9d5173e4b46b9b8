using System.Security.Cryptography;
using System.Text;
using RetinaNet.Core;

namespace RetinaNet.Native;

/// <summary>Our kernels compiled by NVRTC (cubins), kept on disk so that only a machine's first run compiles them: a
/// run's first batch otherwise waits for every source it uses to compile (bench/RESULTS.md, "kernel cache"). A cubin
/// is found by the SHA-256 of everything that made it (source, NVRTC options with the card's architecture, NVRTC's
/// version) and stored with the SHA-256 of its bytes, so a changed source, card or compiler misses the cache and a
/// damaged file is compiled again. The cache is best-effort: a folder that cannot be read or written costs a compile,
/// never a failure. Folder: <see cref="UserCache"/>'s <c>kernels</c>; <c>RETINANET_KERNEL_CACHE=off</c> turns it
/// off.</summary>
public sealed class KernelCache(string? directory)
{
    public const string Variable = "RETINANET_KERNEL_CACHE";
    const int HashBytes = 32;

    /// <summary>The folder, or null when the cache is off.</summary>
    public string? Directory { get; } = directory;

    /// <summary>The cache named by <c>RETINANET_KERNEL_CACHE</c> (a folder, or <c>off</c>), else the user's.</summary>
    public static KernelCache ForThisUser() => new(Environment.GetEnvironmentVariable(Variable) switch
    {
        "off" => null,
        { Length: > 0 } chosen => chosen,
        _ => Path.Combine(UserCache.Directory, "kernels"),
    });

    /// <summary>The name of a cubin: what made it, hashed.</summary>
    public static string Key(string source, IEnumerable<string> options, string compiler)
    {
        var made = new StringBuilder(compiler).Append('\0');
        foreach (var option in options) made.Append(option).Append('\0');
        made.Append(source);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(made.ToString())));
    }

    string? PathOf(string key) => Directory is null ? null : Path.Combine(Directory, key + ".cubin");

    /// <summary>The cubin stored under <paramref name="key"/>, or null (none, unreadable, or damaged).</summary>
    public byte[]? Load(string key)
    {
        if (PathOf(key) is not string path) return null;
        byte[] stored;
        try { stored = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
        if (stored.Length <= HashBytes) return null;
        var cubin = stored.AsSpan(0, stored.Length - HashBytes);
        return SHA256.HashData(cubin).AsSpan().SequenceEqual(stored.AsSpan(stored.Length - HashBytes))
            ? cubin.ToArray() : null;
    }

    /// <summary>Stores <paramref name="cubin"/> under <paramref name="key"/> (atomically: a reader sees the old file or
    /// the whole new one); a folder that cannot be written is left as it is.</summary>
    public void Store(string key, byte[] cubin)
    {
        if (PathOf(key) is not string path) return;
        try
        {
            System.IO.Directory.CreateDirectory(Directory!);
            AtomicFile.Write(path, fs => { fs.Write(cubin); fs.Write(SHA256.HashData(cubin)); });
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
