using System.Text;
using RetinaNet.Data.Imaging;
using SkiaSharp;
using Xunit;

namespace RetinaNet.Tests.Data.Imaging;

public class EmbeddedFontTests
{
    [Fact]
    public void TheEmbeddedFontLoadsWithItsLicence()
    {
        var typeface = EmbeddedFont.Typeface;
        Assert.Equal("DejaVu Sans", typeface.FamilyName);
        Assert.Same(typeface, EmbeddedFont.Typeface); // loaded once
        using var font = EmbeddedFont.Create(13);
        const string text = "triangle 0.93 square disc ×·…";
        Assert.DoesNotContain((ushort)0, font.GetGlyphs(text)); // glyph 0: missing
        using var licence = typeof(EmbeddedFont).Assembly.GetManifestResourceStream(EmbeddedFont.LicenseResourceName);
        Assert.NotNull(licence);
        Assert.Contains("Bitstream Vera", new StreamReader(licence, Encoding.UTF8).ReadToEnd());
    }

    [Fact]
    public void ItDrawsGlyphsWhereTheDefaultTypefaceMayDrawNone()
    {
        static int InkedPixels(SKFont font, string text)
        {
            using var bitmap = new SKBitmap(new SKImageInfo(120, 30, SKColorType.Rgba8888, SKAlphaType.Opaque));
            using (var canvas = new SKCanvas(bitmap))
            {
                canvas.Clear(SKColors.White);
                using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
                canvas.DrawText(text, 4, 20, SKTextAlign.Left, font, ink);
            }
            return Enumerable.Range(0, 30)
                .Sum(y => Enumerable.Range(0, 120).Count(x => bitmap.GetPixel(x, y).Red < 128));
        }
        using var font = EmbeddedFont.Create(16);
        int inked = InkedPixels(font, "Ag 0.9");
        Assert.InRange(inked, 40, 1500);
        Assert.Equal(0, InkedPixels(font, "   "));
        Assert.InRange(font.MeasureText("Ag 0.9"), 30, 80);
        using var bold = EmbeddedFont.Create(16, bold: true);
        Assert.True(InkedPixels(bold, "Ag 0.9") > inked, "bold is darker");
    }
}
