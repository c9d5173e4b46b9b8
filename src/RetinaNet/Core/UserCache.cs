namespace RetinaNet.Core;

/// <summary>The folder our caches live in (models fetched by name, compiled kernels): <c>$RETINANET_CACHE</c>, else
/// <c>$XDG_CACHE_HOME/retinanet</c>, else <c>~/.cache/retinanet</c>.</summary>
public static class UserCache
{
    public const string Variable = "RETINANET_CACHE";

    public static string Directory =>
        Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } cache ? cache
        : Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "retinanet");
}
