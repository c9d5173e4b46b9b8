using System.Runtime.InteropServices;

namespace RetinaNet.Native;

/// <summary>The last resort of a rank whose job has failed: ends the process at once, without running finalisers or
/// native exit handlers, which can block forever on a GPU still waiting for a peer that is gone.</summary>
public static partial class Posix
{
    [LibraryImport("libc.so.6", EntryPoint = "_exit")]
    private static partial void ExitNow(int status);

    /// <summary>Prints <paramref name="message"/> on stderr and ends the process with
    /// <paramref name="code"/>.</summary>
    public static void HardExit(int code, string message)
    {
        try { Console.Error.WriteLine(message); Console.Error.Flush(); Console.Out.Flush(); }
        catch (IOException) { } // the terminal may be gone; exiting matters more
        ExitNow(code);
    }
}
