using System.Runtime.InteropServices;

namespace RetinaNet.Distributed;

/// <summary>libnccl.so.2 and the entry points this toolkit calls, resolved once. <see cref="Present"/>: the library
/// loads; <see cref="MissingReason"/>: why it cannot be used (absent, a symbol missing, older than 2.10 which brought
/// bfloat16 and averaging), or null.</summary>
public static unsafe class NcclLibrary
{
    public const string Name = "libnccl.so.2";
    /// <summary>2.10: ncclBfloat16 and ncclAvg.</summary>
    public const int MinimumVersion = 21000;

    public static IReadOnlyList<string> RequiredSymbols { get; } =
    [
        "ncclGetVersion", "ncclGetUniqueId", "ncclCommInitRank", "ncclAllReduce", "ncclBroadcast", "ncclAllGather",
        "ncclCommGetAsyncError", "ncclCommAbort", "ncclGetErrorString",
    ];

    [StructLayout(LayoutKind.Sequential)]
    public struct UniqueId
    {
        public const int Size = 128;
        public fixed byte Bytes[Size];
    }

    internal sealed class Api
    {
        public delegate* unmanaged<int*, int> GetVersion;
        public delegate* unmanaged<UniqueId*, int> GetUniqueId;
        public delegate* unmanaged<IntPtr*, int, UniqueId, int, int> CommInitRank;
        public delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int> AllReduce;
        public delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int> Broadcast;
        public delegate* unmanaged<IntPtr, IntPtr, nuint, int, IntPtr, IntPtr, int> AllGather;
        public delegate* unmanaged<IntPtr, int*, int> CommGetAsyncError;
        public delegate* unmanaged<IntPtr, int> CommAbort;
        public delegate* unmanaged<int, IntPtr> GetErrorString;
        public int Version;
    }

    static readonly Lazy<(Api? Api, string? Missing, bool Present)> resolved = new(Resolve);

    public static bool Present => resolved.Value.Present;
    public static string? MissingReason => resolved.Value.Missing;
    /// <summary>NCCL_VERSION_CODE of the loaded library (e.g. 22803 for 2.28.3), or 0.</summary>
    public static int Version => resolved.Value.Api?.Version ?? 0;

    internal static Api Require() => resolved.Value.Api
        ?? throw new DistributedSetupException($"NCCL is not usable: {MissingReason}");

    internal static string ErrorString(int status)
    {
        var api = resolved.Value.Api;
        var text = api is null ? null : Marshal.PtrToStringUTF8(api.GetErrorString(status));
        return $"{text ?? "error"} (ncclResult {status})";
    }

    /// <summary>The required symbols the library lacks (empty when all are there); null when it does not
    /// load.</summary>
    public static IReadOnlyList<string>? MissingSymbols()
    {
        if (!NativeLibrary.TryLoad(Name, out var lib)) return null;
        return RequiredSymbols.Where(s => !NativeLibrary.TryGetExport(lib, s, out _)).ToArray();
    }

    static (Api?, string?, bool) Resolve()
    {
        if (!NativeLibrary.TryLoad(Name, out var lib))
            return (null,
                $"{Name} could not be loaded (install NCCL, e.g. the libnccl2 package, or put its folder on "
                + "LD_LIBRARY_PATH)", false);
        var missing = MissingSymbols()!;
        if (missing.Count > 0) return (null, $"{Name} lacks {string.Join(", ", missing)}", true);
        IntPtr Get(string symbol) => NativeLibrary.GetExport(lib, symbol);
        var api = new Api
        {
            GetVersion = (delegate* unmanaged<int*, int>)Get("ncclGetVersion"),
            GetUniqueId = (delegate* unmanaged<UniqueId*, int>)Get("ncclGetUniqueId"),
            CommInitRank = (delegate* unmanaged<IntPtr*, int, UniqueId, int, int>)Get("ncclCommInitRank"),
            AllReduce = (delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int>)Get("ncclAllReduce"),
            Broadcast = (delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int>)Get("ncclBroadcast"),
            AllGather = (delegate* unmanaged<IntPtr, IntPtr, nuint, int, IntPtr, IntPtr, int>)Get("ncclAllGather"),
            CommGetAsyncError = (delegate* unmanaged<IntPtr, int*, int>)Get("ncclCommGetAsyncError"),
            CommAbort = (delegate* unmanaged<IntPtr, int>)Get("ncclCommAbort"),
            GetErrorString = (delegate* unmanaged<int, IntPtr>)Get("ncclGetErrorString"),
        };
        int version;
        if (api.GetVersion(&version) != 0) return (null, "ncclGetVersion failed", true);
        api.Version = version;
        if (version < MinimumVersion) return (null,
            $"{Name} is version {version}; 2.10 or newer is needed (bfloat16, averaging)", true);
        return (api, null, true);
    }
}
