using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using RetinaNet.Distributed;
using RetinaNet.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Distributed;

/// <summary>A TEST DOUBLE of the collectives for machines without GPUs (this project only; the product's backend is
/// NCCL): CPU tensors, a star over loopback TCP — every rank sends its tensor to rank 0, which reduces (in float64)
/// or assembles and sends the result back. The "unique id" is the port of rank 0's hub.
/// <para>Fault injection for the failure tests: <c>RETINANET_TEST_FAULT=RANK:KIND:N</c> (or the constructor) makes
/// rank RANK, at its N-th all-reduce, <c>raise</c> an IOException, get <c>kill</c>ed (SIGKILL), <c>freeze</c> (SIGSTOP:
/// no more heartbeats either) on entry, or <c>hang</c> after completing it (its main thread stuck in its own work,
/// its heartbeat alive).</para></summary>
public sealed class TcpCollectivesProvider(string? fault = null) : ICollectivesProvider
{
    public const string FaultVariable = "RETINANET_TEST_FAULT";
    TcpListener? hub;

    public string Name => "tcp-test-double";

    public string? Unsupported(Device device) =>
        device.type == DeviceType.CPU ? null : "the TCP test double of the collectives works on CPU tensors only";

    public byte[] CreateUniqueId()
    {
        hub = new TcpListener(IPAddress.Loopback, 0);
        hub.Start();
        return BitConverter.GetBytes(((IPEndPoint)hub.LocalEndpoint).Port);
    }

    public ICollectives Connect(byte[] uniqueId, int rank, int worldSize, Device device)
    {
        var parsed = Fault.Parse(fault ?? Environment.GetEnvironmentVariable(FaultVariable));
        var streams = new NetworkStream?[worldSize];
        if (rank == 0)
        {
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            for (int i = 1; i < worldSize; i++)
            {
                var client = hub!.AcceptTcpClientAsync(wait.Token).AsTask().GetAwaiter().GetResult();
                client.NoDelay = true;
                var s = client.GetStream();
                streams[TcpCollectives.ReadInt(s)] = s;
            }
            hub!.Stop();
        }
        else
        {
            var client = new TcpClient { NoDelay = true };
            client.Connect(IPAddress.Loopback, BitConverter.ToInt32(uniqueId));
            streams[0] = client.GetStream();
            TcpCollectives.WriteInt(streams[0]!, rank);
        }
        return new TcpCollectives(rank, worldSize, streams, parsed?.Rank == rank ? parsed : null);
    }

    public sealed record Fault(int Rank, string Kind, int Call)
    {
        public static Fault? Parse(string? text)
        {
            if (string.IsNullOrEmpty(text)) return null;
            var p = text.Split(':');
            return new Fault(int.Parse(p[0]), p[1], int.Parse(p[2]));
        }
    }
}

sealed class TcpCollectives(int rank, int world, NetworkStream?[] streams, TcpCollectivesProvider.Fault? fault)
    : ICollectives
{
    int allReduces;

    public void AllReduce(Tensor tensor, ReduceOp op)
    {
        int call = ++allReduces;
        if (fault is { } f && f.Call == call) Inject(f.Kind, entering: true);
        using var noGrad = no_grad();
        if (rank == 0)
        {
            using var sum = tensor.to(ScalarType.Float64, copy: true);
            for (int r = 1; r < world; r++)
            {
                using var other = empty(tensor.shape, tensor.dtype);
                other.bytes = Receive(streams[r]!);
                sum.Plus_(other);
            }
            if (op == ReduceOp.Average)
            {
                using var ranks = world.ToScalar();
                sum.div_(ranks);
            }
            tensor.copy_(sum);
            var result = tensor.bytes.ToArray();
            for (int r = 1; r < world; r++) Send(streams[r]!, result);
        }
        else
        {
            Send(streams[0]!, tensor.bytes.ToArray());
            tensor.bytes = Receive(streams[0]!);
        }
        if (fault is { } g && g.Call == call) Inject(g.Kind, entering: false);
    }

    public void Broadcast(Tensor tensor, int root)
    {
        if (rank == 0)
        {
            var data = root == 0 ? tensor.bytes.ToArray() : Receive(streams[root]!);
            if (root != 0) tensor.bytes = data;
            for (int r = 1; r < world; r++) if (r != root) Send(streams[r]!, data);
        }
        else if (rank == root) Send(streams[0]!, tensor.bytes.ToArray());
        else tensor.bytes = Receive(streams[0]!);
    }

    public void AllGather(Tensor input, Tensor output)
    {
        if (rank == 0)
        {
            var all = new List<byte>(input.bytes.ToArray());
            for (int r = 1; r < world; r++) all.AddRange(Receive(streams[r]!));
            var result = all.ToArray();
            output.bytes = result;
            for (int r = 1; r < world; r++) Send(streams[r]!, result);
        }
        else
        {
            Send(streams[0]!, input.bytes.ToArray());
            output.bytes = Receive(streams[0]!);
        }
    }

    public string? AsyncError() => null;

    /// <summary>Closing the sockets ends any wait in a call: it throws, as NCCL calls fail
    /// after ncclCommAbort.</summary>
    public void Abort()
    {
        foreach (var s in streams) s?.Dispose();
    }

    public void Dispose() => Abort();

    void Inject(string kind, bool entering)
    {
        switch (kind)
        {
            case "raise" when entering: throw new IOException($"injected fault: rank {rank} could not read its data");
            case "kill" when entering: Process.GetCurrentProcess().Kill(); break;
            case "freeze" when entering: Signal(Environment.ProcessId, 19); break; // SIGSTOP
            case "hang" when !entering: Thread.Sleep(Timeout.Infinite); break;
        }
    }

    [DllImport("libc.so.6", EntryPoint = "kill")]
    static extern int Signal(int pid, int signal);

    static void Send(NetworkStream s, byte[] data)
    {
        WriteInt(s, data.Length);
        s.Write(data);
    }

    static byte[] Receive(NetworkStream s)
    {
        var data = new byte[ReadInt(s)];
        s.ReadExactly(data);
        return data;
    }

    public static void WriteInt(NetworkStream s, int value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(b, value);
        s.Write(b);
    }

    public static int ReadInt(NetworkStream s)
    {
        Span<byte> b = stackalloc byte[4];
        s.ReadExactly(b);
        return BinaryPrimitives.ReadInt32LittleEndian(b);
    }
}
