using RetinaNet.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Distributed;

/// <summary>NCCL as the collectives backend: one communicator per process (one rank per GPU), operations on tensors'
/// device memory enqueued on the default stream (IntPtr.Zero), which is the stream torch uses, so they order with
/// the kernels before and after them without host synchronisation.</summary>
public sealed class NcclProvider : ICollectivesProvider
{
    public string Name => "nccl";

    public string? Unsupported(Device device) =>
        device.type != DeviceType.CUDA
            ? "NCCL moves data between GPUs: a multi-process job needs CUDA devices (drop --device cpu, or use --gpus "
            + "1)"
        : NcclLibrary.MissingReason;

    public unsafe byte[] CreateUniqueId()
    {
        var api = NcclLibrary.Require();
        NcclLibrary.UniqueId id;
        NcclCollectives.Check(api.GetUniqueId(&id), "ncclGetUniqueId");
        return new ReadOnlySpan<byte>(id.Bytes, NcclLibrary.UniqueId.Size).ToArray();
    }

    public unsafe ICollectives Connect(byte[] uniqueId, int rank, int worldSize, Device device)
    {
        if (uniqueId.Length != NcclLibrary.UniqueId.Size) throw new ArgumentException("an NCCL unique id has "
            + $"{NcclLibrary.UniqueId.Size} bytes, got {uniqueId.Length}", nameof(uniqueId));
        var api = NcclLibrary.Require();
        CudaDevice.SetCurrent(device.index < 0 ? 0 : device.index); // the communicator binds to the current device
        NcclLibrary.UniqueId id;
        uniqueId.CopyTo(new Span<byte>(id.Bytes, NcclLibrary.UniqueId.Size));
        IntPtr comm;
        NcclCollectives.Check(api.CommInitRank(&comm, worldSize, id, rank), "ncclCommInitRank");
        return new NcclCollectives(api, comm);
    }
}

sealed unsafe class NcclCollectives(NcclLibrary.Api api, IntPtr comm) : ICollectives
{
    const int InProgress = 7;
    readonly object gate = new();
    bool closed;

    public void AllReduce(Tensor tensor, ReduceOp op) => Call("ncclAllReduce", () =>
        api.AllReduce(TensorMemory.DataPointer(tensor), TensorMemory.DataPointer(tensor), (nuint)tensor.numel(),
            DataType(tensor), op == ReduceOp.Average ? 4 : 0, comm, IntPtr.Zero));

    public void Broadcast(Tensor tensor, int root) => Call("ncclBroadcast", () =>
        api.Broadcast(TensorMemory.DataPointer(tensor), TensorMemory.DataPointer(tensor), (nuint)tensor.numel(),
            DataType(tensor), root, comm, IntPtr.Zero));

    public void AllGather(Tensor input, Tensor output) => Call("ncclAllGather", () =>
        api.AllGather(TensorMemory.DataPointer(input), TensorMemory.DataPointer(output), (nuint)input.numel(),
            DataType(input), comm, IntPtr.Zero));

    public string? AsyncError()
    {
        lock (gate)
        {
            if (closed) return null;
            int error;
            int status = api.CommGetAsyncError(comm, &error);
            if (status != 0) return $"ncclCommGetAsyncError: {NcclLibrary.ErrorString(status)}";
            return error is 0 or InProgress ? null : $"NCCL: {NcclLibrary.ErrorString(error)}";
        }
    }

    /// <summary>Called from the watchdog thread while the main thread may wait on the GPU for a peer that is gone:
    /// the abort makes NCCL's kernels give up, so that wait ends. The gate is only held for enqueueing (short), and
    /// the abort proceeds without it after a while rather than wait on a call stuck in NCCL.</summary>
    public void Abort()
    {
        bool locked = Monitor.TryEnter(gate, TimeSpan.FromSeconds(2));
        try
        {
            if (closed) return;
            closed = true;
            api.CommAbort(comm);
        }
        finally { if (locked) Monitor.Exit(gate); }
    }

    /// <summary>ncclCommAbort frees the communicator locally without waiting on peers (ncclCommDestroy may), and the
    /// job has already agreed that all collectives are done.</summary>
    public void Dispose() => Abort();

    void Call(string name, Func<int> call)
    {
        lock (gate)
        {
            if (closed) throw new InvalidOperationException($"{name}: the NCCL communicator was aborted");
            Check(call(), name);
        }
    }

    internal static void Check(int status, string call)
    {
        if (status != 0 && status != InProgress)
            throw new InvalidOperationException($"{call} failed: {NcclLibrary.ErrorString(status)}");
    }

    static int DataType(Tensor t) => t.dtype switch
    {
        ScalarType.Int8 => 0, ScalarType.Byte or ScalarType.Bool => 1, ScalarType.Int32 => 2, ScalarType.Int64 => 4,
        ScalarType.Float16 => 6, ScalarType.Float32 => 7, ScalarType.Float64 => 8, ScalarType.BFloat16 => 9,
        _ => throw new ArgumentException($"NCCL has no type for {t.dtype}"),
    };
}
