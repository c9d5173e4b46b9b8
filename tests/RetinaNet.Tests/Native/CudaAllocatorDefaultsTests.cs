using System.Diagnostics;
using RetinaNet.Native;
using Xunit;

namespace RetinaNet.Tests.Native;

/// <summary>The allocator settings `retinanet` starts with (<see cref="CudaAllocatorDefaults"/>): set in the C
/// environment libtorch reads, never over a user's own.</summary>
public class CudaAllocatorDefaultsTests
{
    [Fact]
    public void ExpandableSegmentsUnlessTheUserSetEitherVariable()
    {
        Assert.Equal(("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True"), CudaAllocatorDefaults.ToSet(_ => null));
        Assert.Null(CudaAllocatorDefaults.ToSet(n => n == "PYTORCH_CUDA_ALLOC_CONF" ? "max_split_size_mb:64" : null));
        Assert.Null(CudaAllocatorDefaults.ToSet(n => n == "PYTORCH_ALLOC_CONF" ? "expandable_segments:False" : null));
    }

    /// <summary>setenv and getenv of libc, not .NET's managed copy of the environment.</summary>
    [Fact]
    public void SetsAndReadsTheCEnvironment()
    {
        Assert.Equal(Environment.GetEnvironmentVariable("PATH"), CudaAllocatorDefaults.Read("PATH"));
        string name = $"RETINANET_TEST_{Guid.NewGuid():N}";
        Assert.Null(CudaAllocatorDefaults.Read(name));
        CudaAllocatorDefaults.Set(name, "a:b");
        Assert.Equal("a:b", CudaAllocatorDefaults.Read(name));
        Assert.Null(Environment.GetEnvironmentVariable(name)); // what .NET's API would have missed
    }

    /// <summary>The program itself, as a process: `retinanet doctor` reports the settings libtorch will read.</summary>
    [Theory]
    [InlineData(null, null, "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True")]
    [InlineData("PYTORCH_CUDA_ALLOC_CONF", "max_split_size_mb:64", "PYTORCH_CUDA_ALLOC_CONF=max_split_size_mb:64")]
    [InlineData("PYTORCH_ALLOC_CONF", "expandable_segments:False", "PYTORCH_ALLOC_CONF=expandable_segments:False")]
    public async Task TheCommandLineStartsWithThemUnlessTheUserSetThem(string? variable, string? value, string expected)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        start.ArgumentList.Add("exec");
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "retinanet.dll"));
        start.ArgumentList.Add("doctor");
        start.Environment.Remove("PYTORCH_CUDA_ALLOC_CONF");
        start.Environment.Remove("PYTORCH_ALLOC_CONF");
        if (variable is not null) start.Environment[variable] = value;
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        var line = stdout.Split('\n').SingleOrDefault(l => l.Contains("CUDA allocator"));
        Assert.True(line is not null, $"no allocator line in:\n{stdout}\n{await stderr}");
        Assert.EndsWith(expected, line.TrimEnd());
    }
}
