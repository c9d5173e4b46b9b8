using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace RetinaNet.Distributed;

/// <summary>How the ranks find each other. Rank 0 listens on the master address; every other rank connects
/// (retrying until rank 0 is up) and says who it is; once all have, rank 0 creates the backend's unique id (NCCL's
/// 128 bytes) and hands it to each. The connections then stay open as the job's control channel.</summary>
static class Rendezvous
{
    public sealed record Peer(int Rank, ControlLink Link, string Host, int Pid);

    /// <summary>Rank 0's side: the other ranks' links (index = rank − 1) and the unique id.</summary>
    public static (Peer[] Peers, byte[] UniqueId) Host(RankAssignment me, ICollectivesProvider provider,
        TimeSpan timeout)
    {
        var listener = new TcpListener(me.Master.IsLoopback ? IPAddress.Loopback : IPAddress.Any, me.Master.Port);
        try { listener.Start(); }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            throw new DistributedSetupException($"rank 0 cannot listen on port {me.Master.Port}: " +
                "it is in use (another job?); choose a free port with --master ADDR:PORT or MASTER_PORT");
        }
        var peers = new Peer?[me.WorldSize - 1];
        var deadline = Stopwatch.StartNew();
        try
        {
            while (peers.Any(p => p is null))
            {
                var left = timeout - deadline.Elapsed;
                if (left <= TimeSpan.Zero)
                    throw new DistributedSetupException(
                        $"rendezvous at {me.Master}: rank{(peers.Count(p => p is null) > 1 ? "s" : "")} " +
                        $"{string.Join(", ", Enumerable.Range(1, peers.Length).Where(r => peers[r - 1] is null))} " +
                        $"did not join within {timeout.TotalSeconds:F0} s " +
                        $"(did they start, with {SourceHint(me)}, and can they reach {me.Master}?)");
                using var wait = new CancellationTokenSource(left);
                TcpClient client;
                try { client = listener.AcceptTcpClientAsync(wait.Token).AsTask().GetAwaiter().GetResult(); }
                catch (OperationCanceledException) { continue; }
                var link = new ControlLink(client);
                var peer = Greet(link, me, peers, left);
                if (peer is not null) peers[peer.Rank - 1] = peer;
            }
            byte[] id;
            try { id = provider.CreateUniqueId(); }
            catch (Exception e) when (e is not DistributedSetupException)
            {
                throw new DistributedSetupException(
                    $"rank 0 could not create the {provider.Name} id: {e.Message.Split('\n')[0]}");
            }
            foreach (var p in peers)
                p!.Link.Send(ControlMessage.Welcome, w => { w.Write(provider.Name); w.Write(id.Length); w.Write(id); });
            return (peers.Select(p => p!).ToArray(), id);
        }
        catch
        {
            foreach (var p in peers) p?.Link.Dispose();
            throw;
        }
        finally { listener.Stop(); }
    }

    /// <summary>Reads a joiner's hello. A connection that is not one of ours is dropped; a rank whose view of the job
    /// disagrees fails the rendezvous (a misconfigured job must not half-start).</summary>
    static Peer? Greet(ControlLink link, RankAssignment me, Peer?[] peers, TimeSpan left)
    {
        int protocol, rank, world, pid; string host;
        try
        {
            var (kind, body) = link.Receive(TimeSpan.FromTicks(Math.Min(left.Ticks, TimeSpan.FromSeconds(10).Ticks)));
            if (kind != ControlMessage.Hello) { link.Dispose(); return null; }
            (protocol, rank, world, pid, host) =
                (body.ReadInt32(), body.ReadInt32(), body.ReadInt32(), body.ReadInt32(), body.ReadString());
        }
        catch (Exception e) when (e is IOException or EndOfStreamException or InvalidDataException)
        {
            link.Dispose(); // a port scanner, or a rank that died while connecting: it may retry
            return null;
        }
        string? problem = protocol != ControlLink.Protocol
                ? $"a rank from {host} speaks control protocol {protocol}, rank 0 {ControlLink.Protocol}: " +
                    "run the same retinanet version everywhere"
            : world != me.WorldSize
                ? $"rank {rank} on {host} (pid {pid}) has world size {world}, rank 0 has {me.WorldSize}: " +
                    "every rank needs the same WORLD_SIZE"
            : rank <= 0 || rank >= me.WorldSize
                ? $"a process on {host} (pid {pid}) joined as rank {rank}; " +
                    $"ranks 1..{me.WorldSize - 1} were expected (is a second rank 0 running?)"
            : peers[rank - 1] is Peer taken
                ? $"rank {rank} joined twice: from {taken.Host} (pid {taken.Pid}) and {host} (pid {pid}); " +
                    "check RANK/SLURM_PROCID"
            : null;
        if (problem is not null)
        {
            link.TrySend(ControlMessage.Reject, w => w.Write(problem));
            link.Dispose();
            throw new DistributedSetupException($"rendezvous at {me.Master}: {problem}");
        }
        return new Peer(rank, link, host, pid);
    }

    /// <summary>Another rank's side: connects to rank 0 (retrying while it is not up yet), says hello, and waits for
    /// the id.</summary>
    public static (ControlLink Link, string Backend, byte[] UniqueId) Join(RankAssignment me, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        ControlLink? link = null;
        while (link is null)
        {
            var left = timeout - clock.Elapsed;
            if (left <= TimeSpan.Zero)
                throw new DistributedSetupException($"rank {me.Rank} could not reach rank 0 at {me.Master} " +
                    $"within {timeout.TotalSeconds:F0} s " +
                    $"(is rank 0 running? is {SourceHint(me)} the same for every rank, and the port open?)");
            var client = new TcpClient();
            try
            {
                using var wait = new CancellationTokenSource(
                    TimeSpan.FromTicks(Math.Min(left.Ticks, TimeSpan.FromSeconds(5).Ticks)));
                client.ConnectAsync(me.Master.Host, me.Master.Port, wait.Token).AsTask().GetAwaiter().GetResult();
                client.NoDelay = true;
                link = new ControlLink(client);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                client.Dispose();
                Thread.Sleep(200);
            }
        }
        try
        {
            link.Send(ControlMessage.Hello, w =>
            {
                w.Write(ControlLink.Protocol); w.Write(me.Rank); w.Write(me.WorldSize); w.Write(Environment.ProcessId);
                w.Write(Dns.GetHostName());
            });
            var left = timeout - clock.Elapsed;
            (ControlMessage kind, BinaryReader body) reply;
            try { reply = link.Receive(left > TimeSpan.Zero ? left : TimeSpan.FromMilliseconds(1)); }
            catch (IOException)
            {
                throw new DistributedSetupException($"rank {me.Rank} reached rank 0 at {me.Master}, " +
                    $"but the job did not start within {timeout.TotalSeconds:F0} s: " +
                    "some ranks never joined (rank 0 names them)");
            }
            return reply.kind switch
            {
                ControlMessage.Welcome => (link, reply.body.ReadString(), reply.body.ReadBytes(reply.body.ReadInt32())),
                ControlMessage.Reject =>
                    throw new DistributedSetupException($"rank 0 refused rank {me.Rank}: {reply.body.ReadString()}"),
                _ => throw new InvalidDataException(
                    $"rank 0 at {me.Master} answered with {reply.kind} instead of the job's id"),
            };
        }
        catch
        {
            link.Dispose();
            throw;
        }
    }

    static string SourceHint(RankAssignment me) =>
        me.Source == "RANK/WORLD_SIZE" ? "WORLD_SIZE" : me.Source.Split('/')[^1];
}
