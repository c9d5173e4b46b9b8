using static TorchSharp.torch;

namespace RetinaNet.Distributed;

public enum ReduceOp { Sum, Average }

/// <summary>Collective operations over the ranks of a job, on tensors' own memory (contiguous, on the device the
/// backend was connected for), in place. Every rank calls the same operations in the same order (NCCL's contract);
/// calls are enqueued on the stream torch uses, so they order with the surrounding tensor work.</summary>
public interface ICollectives : IDisposable
{
    void AllReduce(Tensor tensor, ReduceOp op);
    void Broadcast(Tensor tensor, int root);
    /// <summary><paramref name="output"/> holds WorldSize × input.numel() elements: rank r's input at offset r ×
    /// n.</summary>
    void AllGather(Tensor input, Tensor output);
    /// <summary>An error the backend found in the background (NCCL's asynchronous errors), or null.</summary>
    string? AsyncError();
    /// <summary>From any thread: operations still running are abandoned and later calls fail
    /// (ncclCommAbort).</summary>
    void Abort();
}

/// <summary>A collectives backend: NCCL in the product; tests bring a CPU double.</summary>
public interface ICollectivesProvider
{
    string Name { get; }
    /// <summary>Why this backend cannot serve tensors on <paramref name="device"/> here, or null when it
    /// can.</summary>
    string? Unsupported(Device device);
    /// <summary>On rank 0: what every rank needs to connect (NCCL: ncclGetUniqueId's 128 bytes).</summary>
    byte[] CreateUniqueId();
    /// <summary>Joins the communicator; returns once every rank has joined.</summary>
    ICollectives Connect(byte[] uniqueId, int rank, int worldSize, Device device);
}
