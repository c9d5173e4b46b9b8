using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;

namespace RetinaNet.Core;

/// <summary>A file fetched over HTTP into place: written to NAME.part beside it, resumed from there (an HTTP range
/// request) when an earlier run was interrupted, its SHA-256 checked (all of it, or the leading hex digits that
/// torchvision puts in its file names), then renamed into place, so a half or damaged download is never taken for the
/// file.</summary>
public static class Download
{
    /// <summary>Fetches <paramref name="url"/> to <paramref name="path"/>, printing a progress line every 10%; the
    /// file's SHA-256 in lower-case hex. Throws <see cref="InvalidDataException"/> (the .part deleted) when the
    /// checksum does not match, and <see cref="HttpRequestException"/> or <see cref="IOException"/> when the transfer
    /// fails (the .part kept for the next run to resume).</summary>
    public static string To(string url, string path, string? sha256, TextWriter progress, HttpClient? http = null,
        CancellationToken cancel = default)
    {
        var part = path + ".part";
        var client = http ?? Shared.Value;
        for (int attempt = 0; ; attempt++)
        {
            long have = File.Exists(part) ? new FileInfo(part).Length : 0;
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            if (have > 0) request.Headers.Range = new RangeHeaderValue(have, null);
            using var response = client.Send(request, HttpCompletionOption.ResponseHeadersRead, cancel);
            // a .part the server cannot continue (complete, or of another file): start over, once
            if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && attempt == 0)
            {
                File.Delete(part);
                continue;
            }
            response.EnsureSuccessStatusCode();
            bool resumed = have > 0 && response.StatusCode == HttpStatusCode.PartialContent;
            if (!resumed) have = 0;
            long? total = response.Content.Headers.ContentLength + have;
            progress.WriteLine(resumed ? $"Resuming {url} at {have / 1e6:F1} MB of {total / 1e6:F1} MB"
                : $"Downloading {url} to {path}");
            Copy(response, part, resumed, have, total, progress, cancel);
            break;
        }
        var got = Sha256(part);
        if (sha256 is not null && !got.StartsWith(sha256, StringComparison.OrdinalIgnoreCase))
        {
            File.Delete(part);
            throw new InvalidDataException($"{url}: SHA-256 {got}, expected {sha256}: the download is damaged or the "
                + "file " +
                "was replaced; it was deleted, run again to download it anew");
        }
        File.Move(part, path, overwrite: true);
        return got;
    }

    static void Copy(HttpResponseMessage response, string part, bool append, long have, long? total,
        TextWriter progress,
        CancellationToken cancel)
    {
        using var source = response.Content.ReadAsStream(cancel);
        using var target = new FileStream(part, append ? FileMode.Append : FileMode.Create, FileAccess.Write);
        var buffer = new byte[1 << 20];
        long done = have;
        int lastTenth = total is long t0 && t0 > 0 ? (int)(10 * done / t0) : 0;
        int n;
        while ((n = source.Read(buffer)) > 0)
        {
            target.Write(buffer, 0, n);
            done += n;
            if (total is long t && t > 0 && (int)(10 * done / t) is var tenth && tenth > lastTenth)
            {
                progress.WriteLine($"  {10 * tenth}% of {t / 1e6:F1} MB");
                lastTenth = tenth;
            }
        }
    }

    /// <summary>The file's SHA-256 in lower-case hex.</summary>
    public static string Sha256(string path)
    {
        using var file = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(file));
    }

    static readonly Lazy<HttpClient> Shared = new(() => new HttpClient { Timeout = TimeSpan.FromMinutes(30) });
}
