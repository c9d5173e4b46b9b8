using Microsoft.AspNetCore.Http;

namespace RetinaNet.Serving;

/// <summary>The image bytes of a request: its body (an image content type), or the files of a multipart form.
/// Kestrel enforces <see cref="ServeOptions.MaxBodyBytes"/> while they are read.</summary>
static class Uploads
{
    static readonly string[] ImageTypes = ["image/jpeg", "image/png", "image/bmp", "application/octet-stream"];

    public static async Task<IReadOnlyList<(string? Name, byte[] Data)>> ReadAsync(HttpRequest request, bool single,
        ServeOptions options, CancellationToken cancel)
    {
        try
        {
            if (request.HasFormContentType)
            {
                var form = await request.ReadFormAsync(cancel).ConfigureAwait(false);
                var files = single ? form.Files.Take(1).ToList() : form.Files.ToList();
                if (files.Count == 0) throw new RequestException(400,
                    "the form has no file; attach an image as a file field");
                if (files.Count > options.MaxImagesPerRequest)
                    throw new RequestException(413, $"{files.Count} files in one request, more than this server's " +
                        $"{options.MaxImagesPerRequest}; split them");
                var read = new List<(string?, byte[])>(files.Count);
                foreach (var file in files)
                {
                    using var buffer = new MemoryStream();
                    await file.CopyToAsync(buffer, cancel).ConfigureAwait(false);
                    read.Add((file.FileName, buffer.ToArray()));
                }
                return read;
            }
            if (!single) throw new RequestException(415,
                "a batch is a multipart/form-data request with one file field per image");
            var type = request.ContentType?.Split(';')[0].Trim().ToLowerInvariant();
            if (type is not null && !ImageTypes.Contains(type))
                throw new RequestException(415, $"content type '{type}' is not an image; send image/jpeg, image/png, " +
                    "image/bmp or a multipart form");
            using var body = new MemoryStream();
            await request.Body.CopyToAsync(body, cancel).ConfigureAwait(false);
            return [(null, body.ToArray())];
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw new RequestException(413,
                $"the request body is larger than this server's {options.MaxBodyBytes} bytes; " +
                "send a smaller image");
        }
        catch (InvalidDataException e) // a malformed or over-long multipart body
        {
            throw new RequestException(e.Message.Contains("limit", StringComparison.OrdinalIgnoreCase) ? 413 : 400,
                $"unreadable multipart form: {e.Message}");
        }
    }
}
