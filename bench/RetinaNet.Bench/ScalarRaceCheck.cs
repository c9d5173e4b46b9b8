using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Bench;

/// <summary><c>scalar-race --scalar implicit|kept --seconds N</c>: why the library keeps its TorchSharp Scalars alive
/// (docs/ARCHITECTURE.md). One thread calls addcmul with a Scalar (a temporary made by an implicit conversion, or one
/// kept in a using) while another forces collections; prints calls, collections and the error if libtorch read a
/// Scalar the finalizer had freed.</summary>
static class ScalarRaceCheck
{
    public static int Run(Func<string, string, string> opt)
    {
        bool implicitScalar = opt("scalar", "implicit") == "implicit";
        double seconds = double.Parse(opt("seconds", "60"));
        using var stop = new CancellationTokenSource();
        long collections = 0;
        var hammer = new Thread(() =>
        {
            while (!stop.IsCancellationRequested) { GC.Collect(); GC.WaitForPendingFinalizers(); collections++; }
        }) { IsBackground = true };
        hammer.Start();
        using var a = randn(1, 64, 32, 32); using var b = randn(1, 64, 32, 32); using var c = randn(1, 64, 1, 1);
        using var one = 1.ToScalar();
        long calls = 0;
        string error = "";
        var clock = Stopwatch.StartNew();
        try
        {
            for (; clock.Elapsed.TotalSeconds < seconds; calls++)
            {
                using var scope = NewDisposeScope();
                if (implicitScalar) addcmul(a, b, c, 1); else addcmul(a, b, c, one);
            }
        }
        catch (Exception e) { error = e.Message.Split('\n')[0].Replace("\"", "'"); }
        finally { stop.Cancel(); hammer.Join(); }
        Console.WriteLine($"{{\"bench\": \"scalar_race\", \"scalar\": \"{(implicitScalar ? "implicit" : "kept")}\", " +
            $"\"calls\": {calls}, \"collections\": {collections}, \"seconds\": {clock.Elapsed.TotalSeconds:F1}, " +
            $"\"error\": \"{error}\"}}");
        return error == "" ? 0 : 1;
    }
}
