using RetinaNet.Distributed;
using static RetinaNet.Cli.SharedOptions;
using static RetinaNet.Cli.Validation;

namespace RetinaNet.Cli;

/// <summary>train's and infer's placement options, as given: <paramref name="Batch"/> only when given (the launcher
/// has its own default).</summary>
sealed record LaunchArguments(string Command, string? Device, int DistTimeout, int? Gpus, int? Batch, int Workers);

/// <summary>train's and infer's placement options (--device, --gpus, --dist-timeout, --batch, --workers) as the
/// library's <see cref="LaunchOptions"/>, and the job run by <see cref="JobLauncher"/> in this process's
/// surroundings.</summary>
static class Launch
{
    public static LaunchOptions Options(LaunchArguments a) =>
        new(DeviceChoice.Resolve(a.Device), TimeSpan.FromSeconds(Positive(DistTimeout, a.DistTimeout)))
        {
            Gpus = a.Gpus,
            Batch = a.Batch is int batch ? Positive(Batch, batch) : null,
            Workers = a.Workers,
        };

    public static int Run(LaunchArguments a, CommandContext context, Func<Placement, int> job) =>
        JobLauncher.Run(Options(a),
            new LaunchContext(context.Gpus, context.Services.Collectives, context.Services.Relaunch,
            context.Services.HardExit, context.Master, context.Arguments, $"retinanet {a.Command}", context.Stdout,
                context.Stderr), job);
}
