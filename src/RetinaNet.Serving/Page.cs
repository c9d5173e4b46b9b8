using System.Reflection;

namespace RetinaNet.Serving;

/// <summary>The page at <c>/</c> (Page/index.html, embedded): pick or drop an image, see the detections.</summary>
static class Page
{
    public static readonly string Html = Read();

    static string Read()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("RetinaNet.Serving.index.html")
            ?? throw new InvalidOperationException("the page is not embedded in RetinaNet.Serving");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
