using System.Collections;
using System.Globalization;

namespace RetinaNet.Distributed;

/// <summary>This process's place in a multi-process job: its rank among <see cref="WorldSize"/>, its index among the
/// ranks of its machine (which GPU it takes), and where rank 0 listens. <see cref="Source"/> names the variables it
/// came from, for error messages.</summary>
public sealed record RankAssignment(int Rank, int WorldSize, int? LocalRank, int? LocalWorldSize, MasterEndpoint Master,
    string Source)
{
    public bool IsMaster => Rank == 0;
}

/// <summary>Reads a launcher's description of the job from the environment, as torchrun and SLURM wrappers set it:
/// RANK, WORLD_SIZE, LOCAL_RANK (LOCAL_WORLD_SIZE), MASTER_ADDR, MASTER_PORT; or SLURM_PROCID, SLURM_NTASKS,
/// SLURM_LOCALID under <c>srun</c> when a master address is known (MASTER_ADDR or <c>--master</c>). An explicit
/// <c>--master</c> overrides MASTER_ADDR/MASTER_PORT. Null: the process was not launched as a rank.</summary>
public static class LaunchEnvironment
{
    public static IReadOnlyDictionary<string, string?> Current()
    {
        var result = new Dictionary<string, string?>();
        foreach (DictionaryEntry e in Environment.GetEnvironmentVariables()) result[(string)e.Key] = e.Value as string;
        return result;
    }

    public static RankAssignment? Read(IReadOnlyDictionary<string, string?> env, MasterEndpoint? masterOption)
    {
        string? Get(string name) => env.TryGetValue(name, out var v) && !string.IsNullOrWhiteSpace(v) ? v.Trim() : null;
        int? port = Get("MASTER_PORT") is string p ? Port(p) : null;
        MasterEndpoint? fromEnv = Get("MASTER_ADDR") is string addr
            ? new MasterEndpoint(addr, port ?? MasterEndpoint.DefaultPort)
            : port is int only ? new MasterEndpoint("127.0.0.1", only) : null;
        var master = masterOption ?? fromEnv ?? new MasterEndpoint("127.0.0.1", MasterEndpoint.DefaultPort);

        if (Get("RANK") is not null || Get("WORLD_SIZE") is not null)
        {
            var world = Count("WORLD_SIZE", Get("WORLD_SIZE") ?? throw Missing("WORLD_SIZE", "RANK"));
            var rank = Index("RANK", Get("RANK") ?? throw Missing("RANK", "WORLD_SIZE"), world, "WORLD_SIZE");
            var (localRank, localWorld) = Local(Get("LOCAL_RANK") is not null ? "LOCAL_RANK" : "SLURM_LOCALID",
                Get("LOCAL_RANK") ?? Get("SLURM_LOCALID"),
                Get("LOCAL_WORLD_SIZE") ?? Get("SLURM_NTASKS_PER_NODE"));
            return new RankAssignment(rank, world, localRank, localWorld, master, "RANK/WORLD_SIZE");
        }
        if (Get("SLURM_PROCID") is string procId && Get("SLURM_NTASKS") is string tasks
            && (masterOption ?? fromEnv) is not null)
        {
            var world = Count("SLURM_NTASKS", tasks);
            var rank = Index("SLURM_PROCID", procId, world, "SLURM_NTASKS");
            var (localRank, localWorld) = Local("SLURM_LOCALID", Get("SLURM_LOCALID"), Get("SLURM_NTASKS_PER_NODE"));
            return new RankAssignment(rank, world, localRank, localWorld, master, "SLURM_PROCID/SLURM_NTASKS");
        }
        return null;
    }

    static (int? Rank, int? World) Local(string name, string? rank, string? world)
    {
        // SLURM_NTASKS_PER_NODE may read "4(x2)" for an uneven layout: a count only when it is one plain number
        int? w = world is not null && int.TryParse(world, NumberStyles.None, CultureInfo.InvariantCulture, out int n)
            && n > 0 ? n : null;
        return (rank is null ? null : Index(name, rank, int.MaxValue, null), w);
    }

    static int Port(string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int port) && port is > 0 and <= 65535
            ? port
            : throw new DistributedSetupException($"MASTER_PORT={text}: expected a port number 1..65535");

    static int Count(string name, string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0 ? n
            : throw new DistributedSetupException($"{name}={text}: expected a positive number of processes (set by the "
            + "launcher)");

    static int Index(string name, string text, int world, string? worldName) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int i) && i < world ? i
            : throw new DistributedSetupException(worldName is null
            ? $"{name}={text}: expected a non-negative integer (set by the launcher)"
                : $"{name}={text}: expected an integer in 0..{world - 1} ({worldName}={world}; set by the launcher)");

    static DistributedSetupException Missing(string name, string other) =>
        new($"{other} is set but {name} is not: a launcher sets both (torchrun does; with srun use "
            + "SLURM_PROCID/SLURM_NTASKS and MASTER_ADDR)");
}
