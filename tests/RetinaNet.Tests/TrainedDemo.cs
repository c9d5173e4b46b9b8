using RetinaNet.Cli;

namespace RetinaNet.Tests;

/// <summary><c>retinanet demo</c> on the CPU, run once per test run and shared by the tests that need a trained
/// detector (the demo's own test, the INT8 accuracy test): it trains for about 4 minutes on 2 cores. Its users
/// belong to the "global torch RNG" collection, so they run one after the other and the first one pays for the
/// training.</summary>
static class TrainedDemo
{
    public sealed record Run(int ExitCode, string Output, string Dir)
    {
        public string Model => Path.Combine(Dir, "model.pth");
        public string Images => Path.Combine(Dir, "data", "images");
        public string TrainAnnotations => Path.Combine(Dir, "data", "annotations.json");
        public string ValAnnotations => Path.Combine(Dir, "data", "val.json");
    }

    static readonly Lazy<Run> run = new(() =>
    {
        var dir = Paths.TempDir();
        var stdout = new StringWriter();
        int code = CommandLine.Run(["demo", "--output", dir, "--device", "cpu"], stdout, TextWriter.Null);
        return new Run(code, stdout.ToString(), dir);
    }, LazyThreadSafetyMode.ExecutionAndPublication);

    public static Run Result => run.Value;
}
