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
        if (args is ["gpu-facts", .. var filters]) return GpuFacts.Run(filters);
        if (args is ["facts", _, ..]) return GpuFacts.Run(args[1..], anyFact: true);
        if (args is not ["retinanet", .. var rest])
        {
            Console.Error.WriteLine("usage: dotnet exec RetinaNet.Tests.dll retinanet COMMAND [options] " +
                "| gpu-facts [NAME_FILTER...] | facts NAME_FILTER...");
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

/// <summary>The GPU machine has no dotnet SDK or test runner: the published suite runs its own [GpuFact]/[GpuTheory]
/// tests there (<c>RetinaNet.Tests gpu-facts</c>), or any test by name (<c>facts NAME...</c>, e.g. CPU tests on its
/// Xeon), each case printed PASS or FAIL, ending with "N passed, N failed".</summary>
static class GpuFacts
{
    // a lean pack for the GPU machine leaves ASP.NET Core out (bench/device/pack_cli_lean.sh): the serving tests'
    // types then do not load, and are not GPU tests
    static IEnumerable<Type> LoadableTypes()
    {
        try { return typeof(GpuFacts).Assembly.GetTypes(); }
        catch (System.Reflection.ReflectionTypeLoadException e)
        {
            // named, so a GPU test class that fails to load for another reason is seen
            foreach (var missing in e.LoaderExceptions.OfType<Exception>().Select(x => x.Message).Distinct())
                Console.Error.WriteLine($"types not loaded: {missing}");
            return e.Types.OfType<Type>();
        }
    }

    public static int Run(string[] filters, bool anyFact = false)
    {
        int passed = 0, failed = 0;
        var methods = LoadableTypes()
            .SelectMany(t => t.GetMethods().Select(m => (Type: t, Method: m)))
            .Where(x => anyFact ? x.Method.GetCustomAttributes(typeof(Xunit.FactAttribute), true).Length > 0
                : x.Method.GetCustomAttributes(typeof(GpuFactAttribute), false).Length > 0
                    || x.Method.GetCustomAttributes(typeof(GpuTheoryAttribute), false).Length > 0)
            .Where(x => filters.Length == 0 || filters.Any(f => $"{x.Type.Name}.{x.Method.Name}".Contains(f)));
        foreach (var (type, method) in methods)
        {
            var cases = method.GetCustomAttributes(typeof(Xunit.InlineDataAttribute), false)
                .Cast<Xunit.InlineDataAttribute>()
                .SelectMany(d => d.GetData(method)).DefaultIfEmpty([]).ToList();
            foreach (var arguments in cases)
            {
                string name = $"{type.Name}.{method.Name}({string.Join(", ", arguments)})";
                try
                {
                    var instance = method.IsStatic ? null : Activator.CreateInstance(type);
                    try { method.Invoke(instance, arguments.Length == 0 ? null : arguments); }
                    finally { (instance as IDisposable)?.Dispose(); }
                    passed++;
                    Console.WriteLine($"PASS {name}");
                }
                catch (System.Reflection.TargetInvocationException e)
                {
                    failed++;
                    Console.WriteLine(
                        $"FAIL {name}: {e.InnerException?.GetType().Name}: {e.InnerException?.Message.Split('\n')[0]}");
                }
            }
        }
        Console.WriteLine($"{passed} passed, {failed} failed");
        return failed == 0 ? 0 : 1;
    }
}
