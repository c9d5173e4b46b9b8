namespace RetinaNet.Distributed;

/// <summary>A multi-process job cannot start as configured (launcher variables, master address, backend): one line
/// that names the variable or option and the fix.</summary>
public sealed class DistributedSetupException(string message) : Exception(message);

/// <summary>The job failed on some rank (or, with no rank named, its collectives stopped moving): every rank stops
/// with this message. <see cref="FailedRank"/> is the rank at fault, when one is known.</summary>
public sealed class DistributedFailureException(int? failedRank, string reason, Exception? inner = null)
    : Exception(failedRank is int r ? $"rank {r} failed: {reason}" : reason, inner)
{
    public int? FailedRank { get; } = failedRank;
    public string Reason { get; } = reason;
}

/// <summary>Rank 0 ended the job early (Ctrl-C, its checkpoint saved): the other ranks stop without error.</summary>
public sealed class DistributedStoppedException(string reason,
    Exception? inner = null) : Exception($"stopped by rank 0: {reason}", inner)
{
    public string Reason { get; } = reason;
}
