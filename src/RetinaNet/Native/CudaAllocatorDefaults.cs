using System.Runtime.InteropServices;

namespace RetinaNet.Native;

/// <summary>The settings of libtorch's CUDA caching allocator that our programs start with. libtorch reads
/// <c>PYTORCH_ALLOC_CONF</c> (or its older name <c>PYTORCH_CUDA_ALLOC_CONF</c>) from the process environment once, when
/// it first allocates on a GPU, so a program sets it at its start, before anything touches libtorch; a user's own
/// setting of either variable wins.
/// <para>Expandable segments: folder inference meets a new padded shape every few batches, and with fixed-size
/// segments each larger shape leaves the blocks of the smaller ones cached beside its own (bench/RESULTS.md,
/// "expandable segments").</para></summary>
public static partial class CudaAllocatorDefaults
{
    public const string Variable = "PYTORCH_CUDA_ALLOC_CONF", NewVariable = "PYTORCH_ALLOC_CONF";
    public const string Settings = "expandable_segments:True";

    // .NET's Environment.SetEnvironmentVariable changes a managed copy only; libtorch reads the C environment
    [LibraryImport("libc.so.6", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);

    [LibraryImport("libc.so.6", EntryPoint = "getenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr GetEnv(string name);

    /// <summary>The C environment's value of <paramref name="name"/>, or null.</summary>
    public static string? Read(string name) => Marshal.PtrToStringUTF8(GetEnv(name));

    /// <summary>Sets <see cref="Settings"/> unless the user set the allocator's variables (Linux only; elsewhere
    /// nothing). Call at a program's start, while no other thread reads the environment.</summary>
    public static void Apply()
    {
        if (OperatingSystem.IsLinux() && ToSet(Read) is var (name, value)) Set(name, value);
    }

    /// <summary>The variable to set and its value, or null where the user set one of the allocator's
    /// variables.</summary>
    public static (string Name, string Value)? ToSet(Func<string, string?> read)
        => read(Variable) is null && read(NewVariable) is null ? (Variable, Settings) : null;

    /// <summary>Sets <paramref name="name"/> in the C environment (overwriting).</summary>
    public static void Set(string name, string value)
    {
        if (SetEnv(name, value, 1) != 0) throw new InvalidOperationException($"setenv({name}) failed");
    }
}
