using RetinaNet.Distributed;

namespace RetinaNet.Cli;

/// <summary>What the command line needs from its surroundings: the GPU count, the collectives backend, how to start
/// this program again as a rank, and how a failed rank ends itself. A real process uses <see cref="ForThisProcess"/>;
/// in-process callers (tests) get <see cref="InProcess"/>, which never starts processes; the test suite's host
/// brings a CPU double of the collectives.</summary>
public sealed record CliServices(Func<int> GpuCount, Func<ICollectivesProvider> Collectives, SelfCommand? Relaunch,
    Action<int, string>? HardExit)
{
    public static CliServices InProcess { get; } = new(DeviceChoice.GpuCount, () => new NcclProvider(), null, null);

    /// <summary>The running executable, started again with the same arguments for each rank.</summary>
    public static CliServices ForThisProcess()
        => new(DeviceChoice.GpuCount, () => new NcclProvider(), SelfCommand.Current(), Native.Posix.HardExit);
}

/// <summary>One command's run: the GPUs seen, the output, the global <c>--master</c> when given, the services, and the
/// whole argument list (what a rank is started with).</summary>
public sealed record CommandContext(int Gpus, TextWriter Stdout, TextWriter Stderr, MasterEndpoint? Master,
    CliServices Services, IReadOnlyList<string> Arguments);
