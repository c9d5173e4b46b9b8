using System.Diagnostics;
using System.Text.RegularExpressions;

namespace RetinaNet.Core;

/// <summary>Writes a file through a temporary file that is then renamed, so a crash never leaves it half written;
/// temporary files that killed writers of the same target left behind are removed.</summary>
public static partial class AtomicFile
{
    static readonly DateTime ProcessStartUtc = StartOfThisProcess();

    static DateTime StartOfThisProcess()
    {
        using var self = Process.GetCurrentProcess();
        return self.StartTime.ToUniversalTime();
    }

    /// <summary>
    /// Writes through a temporary file in the same folder, fsyncs it, then renames it over <paramref name="path"/>,
    /// so readers never see a half-written file and a failed save leaves the old file as it was. Temporary files of
    /// the same target that killed processes left behind are removed first.
    /// </summary>
    public static void Write(string path, Action<FileStream> write)
    {
        string full = Path.GetFullPath(path);
        RemoveStaleTemporaries(full);
        string tmp = $"{full}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    // NAME.tmp-PID-GUID; NAME.tmp-GUID from versions that did not name the writer
    [GeneratedRegex(@"^\.tmp-(?:(\d{1,9})-)?[0-9a-f]{32}$")]
    private static partial Regex TemporarySuffix();

    /// <summary>
    /// A process killed while saving leaves its temporary file (as large as the checkpoint) where no rename or
    /// cleanup will ever reach it. One is stale when its writer is gone: the process named in it is not running
    /// and the file was last written before this process started. Both must hold: the process id alone could be
    /// of another PID namespace (a container sharing the folder), the time alone of a stalled but live writer.
    /// Best effort: a file that cannot be examined or removed stays.
    /// </summary>
    static void RemoveStaleTemporaries(string full)
    {
        string name = Path.GetFileName(full);
        string[] files;
        try { files = Directory.GetFiles(Path.GetDirectoryName(full)!, name + ".tmp-*"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return; }
        foreach (var file in files)
        {
            string fileName = Path.GetFileName(file);
            if (!fileName.StartsWith(name, StringComparison.Ordinal)) continue; // the pattern is a wildcard match
            var m = TemporarySuffix().Match(fileName[name.Length..]);
            if (!m.Success || m.Groups[1].Success && IsRunning(int.Parse(m.Groups[1].Value))) continue;
            try
            {
                if (File.GetLastWriteTimeUtc(file) < ProcessStartUtc) File.Delete(file);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
    }

    static bool IsRunning(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException) { return false; }
    }
}
