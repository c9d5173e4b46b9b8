using System.Security.Cryptography;
using RetinaNet.Core;
using RetinaNet.Native;
using Xunit;

namespace RetinaNet.Tests.Native;

/// <summary>Compiled kernels kept on disk (<see cref="KernelCache"/>), without a GPU: what names a cubin, what is
/// stored, and that a damaged, missing or unwritable file costs a compile (null), never an error. On a GPU,
/// <see cref="KernelCacheGpuTests"/> loads kernels from it.</summary>
public class KernelCacheTests
{
    static readonly string[] Options = ["--gpu-architecture=sm_90", "--std=c++17", "--fmad=false"];
    static readonly byte[] Cubin = Enumerable.Range(0, 1000).Select(i => (byte)(i * 7)).ToArray();

    [Fact]
    public void AnythingThatMadeTheCubinChangesItsName()
    {
        var key = KernelCache.Key("__global__ void k() {}", Options, "nvrtc 13.0");
        Assert.Matches("^[0-9a-f]{64}$", key);
        Assert.Equal(key, KernelCache.Key("__global__ void k() {}", Options.ToList(), "nvrtc 13.0"));
        Assert.NotEqual(key, KernelCache.Key("__global__ void k() { }", Options, "nvrtc 13.0"));
        Assert.NotEqual(key, KernelCache.Key("__global__ void k() {}", ["--gpu-architecture=sm_80", .. Options[1..]],
            "nvrtc 13.0"));
        Assert.NotEqual(key, KernelCache.Key("__global__ void k() {}", Options, "nvrtc 12.8"));
        // options and source are kept apart: moving text from one to the other is another key
        Assert.NotEqual(KernelCache.Key("b", ["a"], "c"), KernelCache.Key("ab", [], "c"));
    }

    [Fact]
    public void StoresTheCubinFollowedByItsSha256AndLoadsItBack()
    {
        var cache = new KernelCache(Path.Combine(Paths.TempDir(), "kernels")); // the folder is made on the first store
        Assert.Null(cache.Load("k"));
        cache.Store("k", Cubin);
        var file = File.ReadAllBytes(Path.Combine(cache.Directory!, "k.cubin"));
        Assert.Equal(Cubin, file[..Cubin.Length]);
        Assert.Equal(SHA256.HashData(Cubin), file[Cubin.Length..]);
        Assert.Equal(Cubin, cache.Load("k"));
        // no temporaries left
        Assert.Equal("k.cubin", Path.GetFileName(Assert.Single(Directory.GetFiles(cache.Directory!))));
    }

    [Theory]
    [InlineData("flipped")]
    [InlineData("truncated")]
    [InlineData("hash only")]
    public void ADamagedFileIsAMiss(string damage)
    {
        var cache = new KernelCache(Paths.TempDir());
        cache.Store("k", Cubin);
        var path = Path.Combine(cache.Directory!, "k.cubin");
        var bytes = File.ReadAllBytes(path);
        bytes = damage switch
        {
            "flipped" => bytes.Select((b, i) => i == 500 ? (byte)(b ^ 1) : b).ToArray(),
            "truncated" => bytes[..^1],
            _ => bytes[^32..],
        };
        File.WriteAllBytes(path, bytes);
        Assert.Null(cache.Load("k"));
        cache.Store("k", Cubin); // compiled again: the file is whole again
        Assert.Equal(Cubin, cache.Load("k"));
    }

    [Fact]
    public void AFolderThatCannotBeWrittenOrAnOffCacheCostsNothingButTheCompile()
    {
        var dir = Paths.TempDir();
        File.WriteAllText(Path.Combine(dir, "file"), "");
        var blocked = new KernelCache(Path.Combine(dir, "file", "kernels")); // a folder under a file
        blocked.Store("k", Cubin);
        Assert.Null(blocked.Load("k"));
        var off = new KernelCache(null);
        off.Store("k", Cubin);
        Assert.Null(off.Load("k"));
    }
}

/// <summary>Where the kernel cache lives; the variables are process-wide, so this runs alone, as the model
/// catalogue's tests (which set <c>RETINANET_CACHE</c> too) do.</summary>
[Collection("global torch RNG")]
public class KernelCacheFolderTests
{
    [Fact]
    public void TheVariableNamesTheFolderOrTurnsTheCacheOff()
    {
        var saved = (Environment.GetEnvironmentVariable(KernelCache.Variable),
            Environment.GetEnvironmentVariable(UserCache.Variable));
        try
        {
            Environment.SetEnvironmentVariable(UserCache.Variable, "/somewhere/cache");
            Environment.SetEnvironmentVariable(KernelCache.Variable, null);
            Assert.Equal(Path.Combine("/somewhere/cache", "kernels"), KernelCache.ForThisUser().Directory);
            Environment.SetEnvironmentVariable(KernelCache.Variable, "/elsewhere");
            Assert.Equal("/elsewhere", KernelCache.ForThisUser().Directory);
            Environment.SetEnvironmentVariable(KernelCache.Variable, "off");
            Assert.Null(KernelCache.ForThisUser().Directory);
        }
        finally
        {
            Environment.SetEnvironmentVariable(KernelCache.Variable, saved.Item1);
            Environment.SetEnvironmentVariable(UserCache.Variable, saved.Item2);
        }
    }
}

/// <summary>On a GPU: a kernel compiled once is loaded from the cache the next time, and a cubin the driver refuses
/// (whole, by its hash, but not a cubin) is compiled again and replaced.</summary>
public class KernelCacheGpuTests
{
    const string Source = """
        extern "C" __global__ void fill(float* x, float value) { x[threadIdx.x] = value + threadIdx.x; }
        """;

    static float[] Fill(IntPtr module, float value)
    {
        using var x = TorchSharp.torch.zeros(4, device: TorchSharp.torch.CUDA);
        CudaKernels.Function(module, "fill", 0).Launch(1, 4, 0, x, value);
        return x.cpu().data<float>().ToArray();
    }

    [GpuFact]
    public void TheSecondLoadComesFromTheCacheAndARefusedCubinIsCompiledAgain()
    {
        var cache = new KernelCache(Paths.TempDir());
        var (compiled, fromCache) = CudaKernels.LoadModule(Source, 0, cache);
        Assert.False(fromCache);
        var file = Assert.Single(Directory.GetFiles(cache.Directory!));
        Assert.Equal([2f, 3f, 4f, 5f], Fill(compiled, 2));
        var (cached, fromCacheAgain) = CudaKernels.LoadModule(Source, 0, cache);
        Assert.True(fromCacheAgain);
        Assert.Equal([7f, 8f, 9f, 10f], Fill(cached, 7));

        var junk = new byte[256];
        new Random(1).NextBytes(junk);
        cache.Store(Path.GetFileNameWithoutExtension(file), junk);
        var (recompiled, fromJunk) = CudaKernels.LoadModule(Source, 0, cache);
        Assert.False(fromJunk);
        Assert.Equal([1f, 2f, 3f, 4f], Fill(recompiled, 1));
        Assert.True(CudaKernels.LoadModule(Source, 0, cache).FromCache); // replaced by the good cubin
    }
}
