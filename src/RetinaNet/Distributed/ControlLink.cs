using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;

namespace RetinaNet.Distributed;

/// <summary>Messages of the control channel between rank 0 and each other rank (see <see cref="Watchdog"/>).</summary>
enum ControlMessage : byte
{
    /// <summary>rank → 0: protocol, rank, world size, pid, host.</summary>
    Hello = 1,
    /// <summary>0 → rank: backend name and unique id; the job starts.</summary>
    Welcome,
    /// <summary>0 → rank: why it cannot join.</summary>
    Reject,
    /// <summary>both ways, every beat: rank → 0 carries its collectives entered and main-loop progress.</summary>
    Beat,
    /// <summary>rank → 0: this rank failed (reason).</summary>
    Fail,
    /// <summary>0 → rank: the job failed (failed rank or −1, reason).</summary>
    Abort,
    /// <summary>0 → rank: rank 0 ended the job early (reason); stop without error.</summary>
    Stop,
    /// <summary>rank → 0: this rank finished its part.</summary>
    Bye,
    /// <summary>0 → rank: every rank finished; tear down.</summary>
    Done,
}

/// <summary>One TCP connection of the control channel: frames of [kind: 1 byte][length: 4 bytes][payload]; sends
/// from several threads are serialised, one thread receives.</summary>
sealed class ControlLink(TcpClient client) : IDisposable
{
    public const int Protocol = 1;
    readonly NetworkStream stream = client.GetStream();
    readonly Socket socket = client.Client; // kept: TcpClient forgets it once disposed
    readonly object sendGate = new();
    int receiveTimeout;

    public string Remote { get; } = client.Client.RemoteEndPoint?.ToString() ?? "?";

    public void Send(ControlMessage kind, Action<BinaryWriter>? body = null)
    {
        var payload = new MemoryStream();
        if (body is not null)
            using (var writer = new BinaryWriter(payload, Encoding.UTF8, leaveOpen: true)) body(writer);
        var frame = new byte[5 + payload.Length];
        frame[0] = (byte)kind;
        BinaryPrimitives.WriteInt32LittleEndian(frame.AsSpan(1), (int)payload.Length);
        payload.GetBuffer().AsSpan(0, (int)payload.Length).CopyTo(frame.AsSpan(5));
        lock (sendGate) stream.Write(frame);
    }

    /// <summary>Sends, ignoring a connection that is already gone (best effort while a job fails or ends).</summary>
    public void TrySend(ControlMessage kind, Action<BinaryWriter>? body = null)
    {
        try { Send(kind, body); }
        catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException) { }
    }

    /// <summary>The next message; throws <see cref="EndOfStreamException"/> (or an IO error) when the peer is
    /// gone.</summary>
    public (ControlMessage Kind, BinaryReader Body) Receive(TimeSpan? timeout = null)
    {
        int milliseconds = timeout is TimeSpan t ? (int)Math.Clamp(t.TotalMilliseconds, 1, int.MaxValue) : 0;
        if (milliseconds != receiveTimeout) socket.ReceiveTimeout = receiveTimeout = milliseconds;
        var header = new byte[5];
        ReadExactly(header);
        int length = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(1));
        if (length is < 0
            or > 1 << 20) throw new InvalidDataException($"control channel: bad frame of {length} bytes from {Remote}");
        var payload = new byte[length];
        ReadExactly(payload);
        return ((ControlMessage)header[0], new BinaryReader(new MemoryStream(payload), Encoding.UTF8));
    }

    void ReadExactly(byte[] buffer)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            int n = stream.Read(buffer, done, buffer.Length - done);
            if (n == 0) throw new EndOfStreamException($"the connection to {Remote} closed");
            done += n;
        }
    }

    public void Dispose()
    {
        try { socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
        client.Dispose();
    }
}
