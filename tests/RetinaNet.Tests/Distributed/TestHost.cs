using RetinaNet.Cli;
using RetinaNet.Distributed;

namespace RetinaNet.Tests.Distributed;

/// <summary>The test assembly as a program: <c>dotnet exec RetinaNet.Tests.dll retinanet ARGS</c> runs the real
/// command line, but with the collectives' CPU test double (<see cref="TcpCollectivesProvider"/>) instead of NCCL,
/// RETINANET_TEST_GPUS pretend GPUs (so <c>train</c>/<c>infer</c> start one rank process per "GPU", each on the CPU),
/// and itself as the program the launcher starts for each rank.</summary>
public static class TestHost
{
    public const string GpusVariable = "RETINANET_TEST_GPUS";

    public static int Main(string[] args)
    {
        if (args is not ["retinanet", .. var rest])
        {
            Console.Error.WriteLine("usage: dotnet exec RetinaNet.Tests.dll retinanet COMMAND [options]");
            return 2;
        }
        var services = new CliServices(
            () => int.TryParse(Environment.GetEnvironmentVariable(GpusVariable), out int n) ? n : 0,
            () => new TcpCollectivesProvider(),
            SelfCommand.Current("retinanet"),
            RetinaNet.Native.Posix.HardExit);
        return CommandLine.Run(rest, Console.Out, Console.Error, services);
    }
}
