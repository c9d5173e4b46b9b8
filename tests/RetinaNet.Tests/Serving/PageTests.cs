using System.Diagnostics;
using RetinaNet.Checkpoints;
using RetinaNet.Model;
using RetinaNet.Serving;
using SkiaSharp;
using Xunit;

namespace RetinaNet.Tests.Serving;

/// <summary>The page at <c>/</c> in a real browser: headless Chromium opens it with a grey image in the link, the
/// page posts it to <c>/v1/detect</c> and draws the answer; the screenshot must show the boxes' colours (which the
/// grey image lacks), and none when the link's threshold lets no detection through. In the serial collection:
/// Chromium's virtual time budget does not wait for a slow answer, and beside trainings the detection once came after
/// the screenshot.</summary>
[Collection("global torch RNG")]
public sealed class PageTests
{
    // the page's palette (Page/index.html), by category id modulo 8
    static readonly SKColor[] Palette = [.. new uint[] { 0xe6194b, 0x3cb44b, 0x4363d8, 0xf58231, 0x911eb4, 0x42d4f4,
        0xf032e6, 0xbfef45 }.Select(rgb => new SKColor((byte)(rgb >> 16), (byte)(rgb >> 8), (byte)rgb))];

    [ChromiumFact]
    public async Task ThePageDrawsTheDetectionsOfADroppedImage()
    {
        var dir = Paths.TempDir();
        var model = Path.Combine(dir, "m.pth");
        using (var m = new RetinaNetModel(new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 3 }))
        {
            m.Initialize(0);
            Checkpoint.Save(model, m);
        }
        using var detector = Detector.Load(model, new DetectorOptions
        {
            Device = "cpu", ScoreThreshold = 0, Resize = 128, MaxSize = 128, MaxDetections = 10,
        });
        await using var server = await DetectionServer.StartAsync(detector, new ServeOptions { Port = 0 });
        using (var grey = new SKBitmap(256, 192))
        {
            grey.Erase(new SKColor(128, 128, 128));
            var png = grey.Encode(SKEncodedImageFormat.Png, 100).ToArray();
            var image = Uri.EscapeDataString("data:image/png;base64," + Convert.ToBase64String(png));
            int drawn = PalettePixels(Screenshot(dir, $"{server.Urls[0]}/#threshold=0&image={image}", "drawn.png"));
            int none = PalettePixels(Screenshot(dir, $"{server.Urls[0]}/#threshold=1&image={image}", "none.png"));
            Assert.True(drawn > 200, $"the page drew {drawn} pixels in the boxes' colours");
            Assert.Equal(0, none);
        }
    }

    static string Screenshot(string dir, string url, string name)
    {
        var path = Path.Combine(dir, name);
        var start = new ProcessStartInfo(ChromiumFactAttribute.Executable!)
        {
            ArgumentList = { "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--window-size=900,700", "--virtual-time-budget=15000",
                $"--user-data-dir={Path.Combine(dir, "profile-" + name)}", $"--screenshot={path}", url },
            RedirectStandardOutput = true, RedirectStandardError = true,
        };
        using var chromium = Process.Start(start)!;
        var errors = chromium.StandardError.ReadToEndAsync();
        chromium.StandardOutput.ReadToEnd();
        Assert.True(chromium.WaitForExit(TimeSpan.FromSeconds(90)), "Chromium did not finish within 90 s");
        Assert.True(File.Exists(path), $"no screenshot: {errors.Result}");
        return path;
    }

    static int PalettePixels(string screenshot)
    {
        using var bitmap = SKBitmap.Decode(screenshot);
        int count = 0;
        for (int y = 0; y < bitmap.Height; y++)
            for (int x = 0; x < bitmap.Width; x++)
            {
                var p = bitmap.GetPixel(x, y);
                if (Palette.Any(c =>
                    Math.Abs(c.Red - p.Red) + Math.Abs(c.Green - p.Green) + Math.Abs(c.Blue - p.Blue) < 24))
                    count++;
            }
        return count;
    }
}
