using SkiaSharp;

namespace RetinaNet.Data.Imaging;

/// <summary>The typeface of all text drawn into pictures: DejaVu Sans, embedded in this assembly. SkiaSharp's
/// NoDependencies native build has no fontconfig, so on a bare Linux machine it finds no system fonts and its default
/// typeface draws nothing. Licence (Bitstream Vera; DejaVu's changes public domain): the resource
/// <see cref="LicenseResourceName"/>, Data/Imaging/Fonts/LICENSE-DejaVu.txt in the source.</summary>
public static class EmbeddedFont
{
    public const string ResourceName = "RetinaNet.Fonts.DejaVuSans.ttf";
    public const string LicenseResourceName = "RetinaNet.Fonts.LICENSE-DejaVu.txt";

    static readonly Lazy<SKTypeface> typeface = new(Load, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Loaded once, kept for the process; Skia typefaces are immutable and safe to share across
    /// threads.</summary>
    public static SKTypeface Typeface => typeface.Value;

    /// <summary>A font of the typeface, <paramref name="size"/> pixels per em, antialiased with subpixel positioning;
    /// the caller disposes it. <paramref name="bold"/> thickens the strokes (synthetic bold: one file stays
    /// small).</summary>
    public static SKFont Create(float size, bool bold = false) => new(Typeface, size)
    {
        Edging = SKFontEdging.Antialias, Subpixel = true, Hinting = SKFontHinting.Slight, Embolden = bold,
    };

    static SKTypeface Load()
    {
        var assembly = typeof(EmbeddedFont).Assembly;
        using var resource = assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"{assembly.GetName().Name} lacks its font {ResourceName}");
        // A copy in native memory: the typeface reads it lazily, from any thread, for as long as the process runs.
        var bytes = new byte[resource.Length];
        resource.ReadExactly(bytes);
        return SKTypeface.FromStream(new SKMemoryStream(bytes))
            ?? throw new InvalidOperationException($"Skia could not read the embedded font {ResourceName}");
    }
}
