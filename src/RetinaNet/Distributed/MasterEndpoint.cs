using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace RetinaNet.Distributed;

/// <summary>Where rank 0 listens for the others: ODTK's <c>--master address:port</c>, or MASTER_ADDR and
/// MASTER_PORT.</summary>
public sealed record MasterEndpoint(string Host, int Port)
{
    public const int DefaultPort = 29500;

    /// <summary>Parses <c>host:port</c> (IPv6 as <c>[::1]:port</c>); <paramref name="source"/> names the origin in
    /// errors.</summary>
    public static MasterEndpoint Parse(string text, string source)
    {
        int colon = text.LastIndexOf(':');
        string host = colon > 0 ? text[..colon].Trim('[', ']') : "";
        if (colon <= 0 || host.Length == 0
            || !int.TryParse(text[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int port)
            || port is <= 0 or > 65535)
            throw new DistributedSetupException($"{source}: expected address:port (e.g. 10.0.0.1:29500), got '{text}'");
        return new MasterEndpoint(host, port);
    }

    /// <summary>The loopback address with a port that is free now: a single-machine job that was not told where to
    /// meet needs no fixed port (two jobs on one machine then never collide).</summary>
    public static MasterEndpoint FreeLocalPort()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return new MasterEndpoint("127.0.0.1", port);
    }

    public bool IsLoopback => Host is "localhost" || (IPAddress.TryParse(Host, out var ip) && IPAddress.IsLoopback(ip));

    public override string ToString() => Host.Contains(':') ? $"[{Host}]:{Port}" : $"{Host}:{Port}";
}
