using System.Diagnostics;
using RetinaNet.Distributed;

namespace RetinaNet.Tests.Distributed;

/// <summary>Runs the test host (<see cref="TestHost"/>: the CLI over the collectives' CPU double) as
/// real processes.</summary>
static class RankProcesses
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr, TimeSpan Elapsed);

    static readonly string[] LauncherVariables = ["RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
        "MASTER_PORT", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"];

    /// <summary>Starts <c>retinanet ARGS</c> with <paramref name="environment"/> (and no launcher variables of the
    /// test runner's own).</summary>
    public static Process Start(IEnumerable<string> args, IReadOnlyDictionary<string, string> environment)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false
        };
        foreach (var a in (string[])["exec", typeof(TestHost).Assembly.Location, "retinanet", .. args])
            start.ArgumentList.Add(a);
        foreach (var v in LauncherVariables) start.Environment.Remove(v);
        foreach (var (k, v) in environment) start.Environment[k] = v;
        return Process.Start(start)!;
    }

    /// <summary>Runs to the end; fails (killing what is left) if it takes longer than <paramref name="limit"/>. The
    /// output is read to its end, which also proves that no process the command started is still alive (each holds
    /// the pipes open).</summary>
    public static Result Run(IEnumerable<string> args, IReadOnlyDictionary<string, string> environment, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        using var p = Start(args, environment);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(limit) || !Task.WaitAll([stdout, stderr], TimeSpan.FromSeconds(30)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"retinanet {string.Join(' ', args)} did not end within " +
                $"{limit.TotalSeconds} s (or left processes behind); " +
                $"stderr so far: {(stderr.IsCompleted ? stderr.Result : "")}");
        }
        return new Result(p.ExitCode, stdout.Result, stderr.Result, clock.Elapsed);
    }

    /// <summary>Several ranks started as a launcher would start them (torchrun's variables), run to the end.</summary>
    public static Result[] RunAsRanks(int ranks, IEnumerable<string> args, TimeSpan limit)
    {
        var master = MasterEndpoint.FreeLocalPort();
        return Enumerable.Range(0, ranks).Select(r => Task.Run(() => Run(args, new Dictionary<string, string>
        {
            ["RANK"] = $"{r}", ["WORLD_SIZE"] = $"{ranks}", ["LOCAL_RANK"] = $"{r}", ["MASTER_ADDR"] = master.Host,
            ["MASTER_PORT"] = $"{master.Port}",
        }, limit))).ToArray().Select(t => t.GetAwaiter().GetResult()).ToArray();
    }
}
