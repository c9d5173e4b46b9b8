using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace RetinaNet.Distributed;

/// <summary>How to run this program again as a rank: the executable and the arguments that come before the
/// command line's own (for <c>dotnet exec app.dll</c>: "exec" and the dll).</summary>
public sealed record SelfCommand(string FileName, IReadOnlyList<string> PrefixArguments)
{
    /// <summary>The running process: its apphost, or the dotnet host with the entry assembly.</summary>
    public static SelfCommand Current(params string[] extraPrefix)
    {
        var exe = Environment.ProcessPath ?? throw new InvalidOperationException("the path of this process is unknown");
        bool host = Path.GetFileNameWithoutExtension(exe) == "dotnet";
        var entry = System.Reflection.Assembly.GetEntryAssembly()?.Location;
        return new SelfCommand(exe, host && entry is { Length: > 0 } ? ["exec", entry, .. extraPrefix]
            : [.. extraPrefix]);
    }
}

/// <summary>ODTK's single-machine behaviour: one process per GPU, here by starting this program again N times with a
/// launcher's environment (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) — the same
/// variables torchrun sets, so the ranks cannot tell the difference. Output is shared (only rank 0 prints besides
/// errors). When a rank exits with an error the others get a grace period to stop on their own (their watchdogs
/// see it at once), then are killed: the launcher never outlives a failed job, and leaves no process behind.</summary>
public static class LocalLauncher
{
    public static int Run(SelfCommand self, IReadOnlyList<string> arguments, int ranks, MasterEndpoint master,
        TimeSpan grace, TextWriter stderr, string command)
    {
        var processes = new List<Process>();
        // Ctrl-C reaches every process of the terminal's group: the ranks handle it (rank 0 saves and stops the
        // job), the launcher waits for them. A SIGTERM for the launcher alone is passed on by killing the ranks.
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => c.Cancel = true);
        using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true;
            KillAll(processes); });
        try
        {
            for (int rank = 0; rank < ranks; rank++)
            {
                var process = Start(self, arguments, rank, ranks, master);
                lock (processes) processes.Add(process);
            }
            var waits = processes.Select(p => p.WaitForExitAsync()).ToArray();
            var running = waits.ToList();
            while (running.Count > 0)
            {
                var done = Task.WhenAny(running).GetAwaiter().GetResult();
                running.Remove(done);
                int rank = Array.IndexOf(waits, done);
                int code = processes[rank].ExitCode;
                if (code == 0) continue;
                if (!Task.WaitAll([.. running], grace)) KillAll(processes);
                Task.WaitAll([.. running], TimeSpan.FromSeconds(10));
                // the ranks' own lines above name the rank at fault; this one says which process ended first
                stderr.WriteLine($"{command}: error: the job failed: rank {rank} (pid {processes[rank].Id}) "
                    + $"{Describe(code)} first; the other ranks were stopped");
                return 1;
            }
            return 0;
        }
        finally
        {
            KillAll(processes);
            foreach (var p in processes) p.Dispose();
        }
    }

    static Process Start(SelfCommand self, IReadOnlyList<string> arguments, int rank, int ranks, MasterEndpoint master)
    {
        var start = new ProcessStartInfo(self.FileName) { UseShellExecute = false };
        foreach (var a in self.PrefixArguments.Concat(arguments)) start.ArgumentList.Add(a);
        string Text(int v) => v.ToString(CultureInfo.InvariantCulture);
        start.Environment["RANK"] = Text(rank);
        start.Environment["LOCAL_RANK"] = Text(rank);
        start.Environment["WORLD_SIZE"] = Text(ranks);
        start.Environment["LOCAL_WORLD_SIZE"] = Text(ranks);
        start.Environment["MASTER_ADDR"] = master.Host;
        start.Environment["MASTER_PORT"] = Text(master.Port);
        return Process.Start(start)
            ?? throw new InvalidOperationException($"could not start rank {rank} ({self.FileName})");
    }

    static string Describe(int code) => code > 128 && code < 160
        ? $"was killed by signal {code - 128} (exit code {code})" : $"exited with code {code}";

    static void KillAll(List<Process> processes)
    {
        lock (processes)
            foreach (var p in processes)
            {
                try { if (!p.HasExited) p.Kill(entireProcessTree: true); }
                catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception) { }
            }
    }
}
