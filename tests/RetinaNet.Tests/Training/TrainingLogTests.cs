using RetinaNet.Core;
using RetinaNet.Training;
using Xunit;

namespace RetinaNet.Tests.Training;

/// <summary>Expected strings are CPython's (tests/fixtures/python_format_cases.py prints them).</summary>
public class TrainingLogTests
{
    [Theory]
    [InlineData(0.01, "0.01")]
    [InlineData(0.0001, "0.0001")]
    [InlineData(1e-05, "1e-05")]
    [InlineData(0.00125, "0.0013")]
    [InlineData(0.125, "0.12")]     // exact tie: half to even
    [InlineData(0.375, "0.38")]     // exact tie: half to even
    [InlineData(100.0, "1e+02")]
    [InlineData(12345.0, "1.2e+04")]
    [InlineData(0.5, "0.5")]
    [InlineData(1.0, "1")]
    [InlineData(0.0, "0")]
    [InlineData(-0.0, "-0")]
    [InlineData(9.96, "10")]
    [InlineData(99.5, "1e+02")]
    [InlineData(9.9996e-05, "0.0001")] // rounding moves it into fixed notation
    [InlineData(1.25e-07, "1.2e-07")]
    [InlineData(-0.0015, "-0.0015")]
    [InlineData(1e16, "1e+16")]
    [InlineData(0.00099999, "0.001")]
    [InlineData(5e-324, "4.9e-324")]
    [InlineData(1.7976931348623157e308, "1.8e+308")]
    [InlineData(double.PositiveInfinity, "inf")]
    [InlineData(double.NaN, "nan")]
    public void General_2_matches_python(double x, string expected) =>
        Assert.Equal(expected, PythonFormat.General(x, 2));

    [Theory]
    [InlineData(0.0625, "0.062", "0.1", "0")]
    [InlineData(2.675, "2.675", "2.7", "3")]
    [InlineData(0.5, "0.500", "0.5", "0")]
    [InlineData(1.5, "1.500", "1.5", "2")]
    [InlineData(2.5, "2.500", "2.5", "2")]
    [InlineData(1234.5678, "1234.568", "1234.6", "1235")]
    [InlineData(-0.0004, "-0.000", "-0.0", "-0")]
    [InlineData(0.0005, "0.001", "0.0", "0")]
    [InlineData(0.0015, "0.002", "0.0", "0")]
    public void Fixed_matches_python(double x, string f3, string f1, string f0)
    {
        Assert.Equal(f3, PythonFormat.Fixed(x, 3));
        Assert.Equal(f1, PythonFormat.Fixed(x, 1));
        Assert.Equal(f0, PythonFormat.Fixed(x, 0));
    }

    [Fact]
    public void Log_line_matches_odtk()
        => Assert.Equal("[   70/90000] focal loss: 0.723, box loss: 0.406, 0.312s/16-batch " +
            "(fw: 0.062s, bw: 0.250s), 51.2 im/s, lr: 0.0013",
            TrainingLogLine.Format(70, 90000, 0.72345, 0.40625, 0.3125, 16, 0.0625, 0.25, 0.00125));

    [Fact]
    public void Progress_bar_shows_percent_iteration_and_eta()
    {
        // 350 of 1000 in 35 s: 0.1 s each, 650 left = 65 s; 35% of 20 cells = 7
        Assert.Equal("[#######.............]  35% 350/1000 ETA 0:01:05",
            ProgressBar.Format(350, 1000, TimeSpan.FromSeconds(35), width: 20));
        Assert.Equal("[..........]   0% 0/10 ETA ?:??:??", ProgressBar.Format(0, 10, TimeSpan.Zero, width: 10));
        Assert.Equal("[##########] 100% 10/10 ETA 0:00:00",
            ProgressBar.Format(10, 10, TimeSpan.FromSeconds(3), width: 10));
        Assert.Equal("27:46:40", ProgressBar.Clock(TimeSpan.FromSeconds(100000)));
        Assert.Equal("0:00:59", ProgressBar.Clock(TimeSpan.FromSeconds(59.99)));
    }

    [Fact]
    public void Rate_limiter_fires_at_most_every_interval()
    {
        var now = TimeSpan.Zero;
        var limiter = new RateLimiter(TimeSpan.FromSeconds(5), () => now);
        Assert.True(limiter.Ready());
        now = TimeSpan.FromSeconds(4.9);
        Assert.False(limiter.Ready());
        now = TimeSpan.FromSeconds(5);
        Assert.True(limiter.Ready());
        now = TimeSpan.FromSeconds(9);
        Assert.False(limiter.Ready()); // measured from the last firing (5 s), not the last call
        now = TimeSpan.FromSeconds(10.5);
        Assert.True(limiter.Ready());
    }

    [Fact]
    public void Redirected_output_gets_plain_lines_only()
    {
        var w = new StringWriter { NewLine = "\n" };
        var log = new ProgressLog(w, interactive: false, TimeSpan.Zero, () => TimeSpan.Zero);
        log.Progress(1, 10, TimeSpan.FromSeconds(1));
        log.Line("first");
        log.Progress(10, 10, TimeSpan.FromSeconds(10));
        log.Finish();
        Assert.Equal("first\n", w.ToString());
    }

    [Fact]
    public void Redirected_output_gets_an_occasional_count_line_when_asked()
    {
        // infer's progress in a log file: "[n/N] images" at most every 10 s, none before the first 10 s nor at the end
        var w = new StringWriter { NewLine = "\n" };
        var now = TimeSpan.Zero;
        var log = new ProgressLog(w, interactive: false, TimeSpan.FromSeconds(0.5), () => now,
            plain: ("images", TimeSpan.FromSeconds(10)));
        now = TimeSpan.FromSeconds(9);
        log.Progress(8, 100, now);
        now = TimeSpan.FromSeconds(10);
        log.Progress(10, 100, now);
        now = TimeSpan.FromSeconds(15);
        log.Progress(15, 100, now);
        now = TimeSpan.FromSeconds(21);
        log.Progress(21, 100, now);
        now = TimeSpan.FromSeconds(40);
        log.Progress(100, 100, now);
        log.Finish();
        Assert.Equal("[10/100] images\n[21/100] images\n", w.ToString());
    }

    [Fact]
    public void Terminal_output_redraws_the_bar_in_place_rate_limited()
    {
        var w = new StringWriter { NewLine = "\n" };
        var now = TimeSpan.Zero;
        var log = new ProgressLog(w, interactive: true, TimeSpan.FromSeconds(1), () => now);
        log.Progress(1, 4, TimeSpan.FromSeconds(1));
        now = TimeSpan.FromSeconds(0.5);
        log.Progress(2, 4, TimeSpan.FromSeconds(2)); // too soon: not drawn
        string bar1 = ProgressBar.Format(1, 4, TimeSpan.FromSeconds(1));
        Assert.Equal("\r" + bar1, w.ToString());

        log.Line("a log line");
        now = TimeSpan.FromSeconds(0.7);
        log.Progress(4, 4, TimeSpan.FromSeconds(4)); // the last iteration always draws
        log.Finish();
        string bar4 = ProgressBar.Format(4, 4, TimeSpan.FromSeconds(4));
        Assert.Equal("\r" + bar1 + "\r" + new string(' ', bar1.Length) + "\r" + "a log line\n" + "\r" + bar4 + "\n",
            w.ToString());
    }
}
