using RetinaNet.Distributed;
using static RetinaNet.Cli.Validation;

namespace RetinaNet.Cli;

/// <summary>train's and infer's placement options (--device, --gpus, --dist-timeout, --batch, --workers) as the
/// library's <see cref="LaunchOptions"/>, and the job run by <see cref="JobLauncher"/> in this process's
/// surroundings.</summary>
static class Launch
{
    public static LaunchOptions Options(ParsedArgs a) =>
        new(DeviceChoice.Resolve(a.String("--device")), TimeSpan.FromSeconds(Positive(a, "--dist-timeout")))
        {
            Gpus = a.OptionalInt("--gpus"),
            Batch = a.Has("--batch") ? Positive(a, "--batch") : null,
            Workers = a.Int("--workers"),
        };

    public static int Run(ParsedArgs a, CommandContext context, Func<Placement, int> job) =>
        JobLauncher.Run(Options(a),
            new LaunchContext(context.Gpus, context.Services.Collectives, context.Services.Relaunch,
            context.Services.HardExit, context.Master, context.Arguments, $"retinanet {a.Command}", context.Stdout,
                context.Stderr), job);
}
