using System.Diagnostics;
using System.Globalization;

namespace RetinaNet.Core;

/// <summary>A one-line terminal progress bar: <c>[#######.............]  35% 350/1000 ETA 0:01:05</c>.</summary>
public static class ProgressBar
{
    public static string Format(long iteration, long iterations, TimeSpan elapsed, int width = 30)
    {
        var inv = CultureInfo.InvariantCulture;
        double fraction = iterations <= 0 ? 1 : Math.Clamp((double)iteration / iterations, 0, 1);
        int filled = (int)Math.Floor(fraction * width);
        string eta = iteration <= 0 ? "?:??:??"
            : Clock(TimeSpan.FromTicks((long)(elapsed.Ticks / (double)iteration * Math.Max(iterations - iteration,
            0))));
        return $"[{new string('#', filled)}{new string('.', width - filled)}] "
            + $"{((int)Math.Floor(fraction * 100)).ToString(inv),3}% "
            + $"{iteration.ToString(inv)}/{iterations.ToString(inv)} ETA {eta}";
    }

    /// <summary>h:mm:ss, hours unbounded (as Python's str(timedelta) without days or fractions), rounded
    /// down.</summary>
    public static string Clock(TimeSpan t)
    {
        long seconds = Math.Max(0, (long)Math.Floor(t.TotalSeconds));
        return string.Create(CultureInfo.InvariantCulture,
            $"{seconds / 3600}:{seconds / 60 % 60:00}:{seconds % 60:00}");
    }
}

/// <summary>"At most once every <c>interval</c>": <see cref="Ready"/> is true on the first call and then only
/// when the interval has passed since it was last true.</summary>
public sealed class RateLimiter
{
    readonly TimeSpan interval;
    readonly Func<TimeSpan> clock;
    TimeSpan? last;

    /// <param name="clock">Monotonic time (tests inject one); defaults to a Stopwatch.</param>
    public RateLimiter(TimeSpan interval, Func<TimeSpan>? clock = null)
    {
        this.interval = interval;
        if (clock is null)
        {
            var watch = Stopwatch.StartNew();
            clock = () => watch.Elapsed;
        }
        this.clock = clock;
    }

    public bool Ready()
    {
        var now = clock();
        if (last is TimeSpan t && now - t < interval) return false;
        last = now;
        return true;
    }
}

/// <summary>Writes log lines and, on an interactive terminal, a progress bar redrawn in place with '\r' at most every
/// <c>progressInterval</c>. The caller says whether output is interactive (e.g. !Console.IsOutputRedirected); when
/// it is not, only the plain log lines are written, and <c>[n/N] unit</c> lines when <c>plain</c> asks.</summary>
public sealed class ProgressLog
{
    readonly TextWriter output;
    readonly bool interactive;
    readonly RateLimiter limiter;
    readonly string? plainUnit;
    int drawnLength;

    /// <param name="plain">When not interactive: a <c>[n/N] Unit</c> line at most every <c>Interval</c>, the first
    /// after one interval (a log file of a long run shows progress; a short run stays quiet).</param>
    public ProgressLog(TextWriter output, bool interactive, TimeSpan progressInterval, Func<TimeSpan>? clock = null,
        (string Unit, TimeSpan Interval)? plain = null)
    {
        this.output = output;
        this.interactive = interactive;
        plainUnit = interactive ? null : plain?.Unit;
        limiter = new RateLimiter(plainUnit is null ? progressInterval : plain!.Value.Interval, clock);
        if (plainUnit is not null) limiter.Ready(); // starts the first interval now
    }

    /// <summary>Writes a full line, first wiping a drawn progress bar (it comes back on the next redraw).</summary>
    public void Line(string line)
    {
        Wipe();
        output.WriteLine(line);
        output.Flush();
    }

    /// <summary>Redraws the progress bar when interactive and the rate limiter allows (the last iteration always
    /// draws).</summary>
    public void Progress(long iteration, long iterations, TimeSpan elapsed)
    {
        if (!interactive)
        {
            // the run's own summary follows the last one
            if (plainUnit is not null && iteration < iterations && limiter.Ready())
                Line($"[{iteration}/{iterations}] {plainUnit}");
            return;
        }
        if (!limiter.Ready() && iteration < iterations) return;
        string bar = ProgressBar.Format(iteration, iterations, elapsed);
        output.Write("\r" + bar + new string(' ', Math.Max(0, drawnLength - bar.Length)));
        output.Flush();
        drawnLength = bar.Length;
    }

    /// <summary>Ends a drawn progress bar with a newline (call at the end of training).</summary>
    public void Finish()
    {
        if (drawnLength == 0) return;
        output.WriteLine();
        output.Flush();
        drawnLength = 0;
    }

    void Wipe()
    {
        if (drawnLength == 0) return;
        output.Write("\r" + new string(' ', drawnLength) + "\r");
        drawnLength = 0;
    }
}
