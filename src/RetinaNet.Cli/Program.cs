using System.Diagnostics;
using RetinaNet.Checkpoints;
using RetinaNet.Cli;
using RetinaNet.Distributed;

// before anything touches libtorch (its allocator reads the setting once)
RetinaNet.Native.CudaAllocatorDefaults.Apply();
return CommandLine.Run(args, Console.Out, Console.Error, CliServices.ForThisProcess());

namespace RetinaNet.Cli
{
    /// <summary>Entry point, callable in-process by tests: returns the exit code (0 ok, 1 failed, 2 bad command
    /// line, 3 not yet supported), printing errors as one line on <c>stderr</c>.</summary>
    public static class CommandLine
    {
        public const int Ok = 0, Failed = 1, BadUsage = 2, NotYetSupported = 3;

        /// <summary>The one global option, given before the command (as in ODTK): where rank 0 listens.</summary>
        public static readonly Option<string> Master = Option.String("--master",
            "address and port of the master worker", "address:port", "127.0.0.1:29500");

        /// <summary>In-process run (tests): never starts rank processes.</summary>
        public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
            => Run(args, stdout, stderr, CliServices.InProcess);

        public static int Run(string[] args, TextWriter stdout, TextWriter stderr, CliServices services)
        {
            string command = "retinanet";
            try
            {
                var rest = new List<string>(args);
                string? master = null;
                // Global options come before the command, as in ODTK (argparse).
                while (rest.Count > 0 && rest[0].StartsWith("--") && rest[0] is not ("--help" or "--version"))
                {
                    if (rest[0] == Master.Name && rest.Count > 1) { master = rest[1]; rest.RemoveRange(0, 2); }
                    else if (rest[0].StartsWith(Master.Name + "=")) { master = rest[0][(Master.Name.Length + 1)..];
                        rest.RemoveAt(0); }
                    else throw new UsageException($"unknown global option {rest[0]} (global options: {Master.Name} "
                        + $"{Master.Spec.Meta})");
                }
                if (rest.Count == 0 || rest[0] is "--help" or "-h" or "help")
                {
                    stdout.Write(GeneralHelp());
                    return rest.Count == 0 ? BadUsage : Ok;
                }
                if (rest[0] == "--version")
                {
                    stdout.WriteLine(VersionLine());
                    return Ok;
                }
                command = $"retinanet {rest[0]}";
                var cli = CommandRegistry.Find(rest[0])
                    ?? throw new UsageException($"unknown command '{rest[0]}': use "
                    + $"{string.Join(", ", CommandRegistry.All.Select(c => c.Name))} (retinanet --help)");
                int gpus = cli.NeedsGpuCount ? services.GpuCount() : 0;
                var spec = cli.Spec(LaunchOptions.DefaultBatch(gpus));
                var commandArgs = rest.Skip(1).ToList();
                if (commandArgs.Contains("--help") || commandArgs.Contains("-h"))
                {
                    stdout.Write(spec.Usage());
                    return Ok;
                }
                var parsed = ArgParser.Parse(spec, commandArgs);
                MasterEndpoint? masterEndpoint;
                try { masterEndpoint = master is null ? null : MasterEndpoint.Parse(master, Master.Name); }
                catch (DistributedSetupException e) { throw new UsageException(e.Message); }
                return cli.Run(parsed, new CommandContext(gpus, stdout, stderr, masterEndpoint, services, args));
            }
            catch (Exception e) when (e is UsageException or PlacementException)
            {
                stderr.WriteLine($"{command}: error: {e.Message}");
                return BadUsage;
            }
            catch (NotYetSupportedException e)
            {
                stderr.WriteLine($"{command}: not yet supported: {e.Message}");
                return NotYetSupported;
            }
            catch (Exception e)
                when (e is Training.TrainingDivergedException or DistributedFailureException
                or DistributedSetupException)
            {
                stderr.WriteLine($"{command}: error: {e.Message}");
                return Failed;
            }
            catch (DistributedStoppedException e)
            {
                stderr.WriteLine($"{command}: {e.Message}");
                return Ok;
            }
            catch (Exception e)
                when (e is IOException or InvalidDataException or CheckpointFormatException or ArgumentException
                or UnauthorizedAccessException
                or Inference.Onnx.TensorRtUnavailableException)
            {
                stderr.WriteLine($"{command}: error: {e.Message}");
                return Failed;
            }
        }

        static string GeneralHelp() =>
            "usage: retinanet [--master address:port] COMMAND [options]\n\n"
            + "RetinaNet object detection for .NET: train on COCO-style data, infer, evaluate, export.\n\ncommands:\n"
            + string.Concat(CommandRegistry.All.Select(c => $"  {c.Name,-10} {c.Help}\n"))
            + "\nretinanet COMMAND --help shows a command's options.\n";

        /// <summary>The package version (Directory.Build.props), the commit it was built from, and the libtorch
        /// it runs on.</summary>
        static string VersionLine()
        {
            var informational = typeof(CommandLine).Assembly
                .GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
                .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().Single().InformationalVersion;
            var (version, commit) = informational.IndexOf('+') is int plus and >= 0
                ? (informational[..plus],
                $"commit {informational[(plus + 1)..][..Math.Min(12, informational.Length - plus - 1)]}, ")
                : (informational, "");
            return $"retinanet {version} ({commit}TorchSharp "
                + $"{typeof(TorchSharp.torch).Assembly.GetName().Version!.ToString(3)})";
        }
    }

    /// <summary>A feature that a later release brings: reported, never silently ignored.</summary>
    public sealed class NotYetSupportedException(string message) : Exception(message);
}
