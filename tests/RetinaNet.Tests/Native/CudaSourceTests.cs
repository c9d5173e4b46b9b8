using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using RetinaNet.Native;
using Xunit;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Native;

/// <summary>Our kernels' CUDA sources as embedded resources (<see cref="CudaSource"/>), checked without a GPU against
/// the repository's files and the C# that launches them: every .cu/.cuh file under src/RetinaNet is embedded byte for
/// byte, and every kernel name a <c>CudaKernels.Get</c> call asks for is an <c>extern "C" __global__</c> entry of the
/// source that call compiles (found in that source after its X-macros are expanded).</summary>
public class CudaSourceTests
{
    static readonly string Library = Path.Combine(RepositoryRoot(), "src", "RetinaNet");
    static readonly string[] BuildOutputs = ["bin", "obj"];

    static string RepositoryRoot()
    {
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "RetinaNet.slnx"))) root = root.Parent;
        return root?.FullName ?? throw new InvalidOperationException("no RetinaNet.slnx above the test binaries");
    }

    static IEnumerable<string> LibraryFiles(params string[] patterns) =>
        patterns.SelectMany(p => Directory.EnumerateFiles(Library, p, SearchOption.AllDirectories))
            .Where(f => !Path.GetRelativePath(Library, f).Split(Path.DirectorySeparatorChar).Any(BuildOutputs.Contains))
            .Order(StringComparer.Ordinal);

    [Fact]
    public void EveryCudaFileIsEmbeddedAsItIsOnDisk()
    {
        var files = LibraryFiles("*.cu", "*.cuh").ToList();
        Assert.NotEmpty(files);
        var names = files.Select(Path.GetFileName).ToList();
        Assert.Equal(names.Count, names.Distinct().Count()); // one resource name space for all folders
        Assert.Equal(names.Order(StringComparer.Ordinal), CudaSource.All);
        foreach (var file in files)
        {
            var embedded = Encoding.UTF8.GetBytes(CudaSource.Load(Path.GetFileName(file)));
            Assert.True(File.ReadAllBytes(file).AsSpan().SequenceEqual(embedded), $"{file} differs from its resource");
        }
    }

    [Fact]
    public void AMissingSourceIsNamed()
    {
        var error = Assert.Throws<InvalidOperationException>(() => CudaSource.Load("NoSuchKernel.cu"));
        Assert.Contains($"\"{CudaSource.ResourcePrefix}NoSuchKernel.cu\"", error.Message);
    }

    [Fact]
    public void EveryLaunchedKernelIsAnEntryOfItsSource()
    {
        // a hole in a launched name is a value type's suffix: whatever TypeSuffix answers
        var suffixes = new[] { ScalarType.Float32, ScalarType.BFloat16, ScalarType.Float16 }
            .Select(d => { using var t = empty(0, dtype: d); return CudaKernels.TypeSuffix(t); }).ToList();
        var loadedByLaunchers = new HashSet<string>();
        int launches = 0;
        foreach (var file in LibraryFiles("*.cs"))
        {
            string code = File.ReadAllText(file);
            var loads = Regex.Matches(code, @"CudaSource\.Load\(""([^""]+)""\)").Select(m => m.Groups[1].Value)
                .ToList();
            string folder = Path.GetDirectoryName(file)!;
            foreach (var cu in loads)
                Assert.True(File.Exists(Path.Combine(folder, cu)), $"{file} loads {cu}, not next to it");
            var calls = Regex.Matches(code, @"CudaKernels\.Get\(").Select(m => Arguments(code, m.Index + m.Length))
                .ToList();
            if (calls.Count == 0) continue;
            Assert.NotEmpty(loads);
            loadedByLaunchers.UnionWith(loads);
            string typeName = Path.GetFileNameWithoutExtension(file);
            var type = typeof(CudaSource).Assembly.GetTypes().Single(t => t.Name == typeName);
            foreach (var call in calls)
            {
                string field = call[0].Trim();
                var flags = BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic;
                var source = type.GetField(field, flags)?.GetValue(null) as string;
                Assert.True(source is not null, $"{type.Name}.{field}: no static source text");
                foreach (var cu in loads) Assert.Contains(CudaSource.Load(cu), source);
                var entries = Entries(source);
                var names = Regex.Matches(call[1], @"(\$?)""([^""]*)""").ToList();
                Assert.True(names.Count > 0, $"{type.Name}: write launch names at the Get call, not {call[1].Trim()}");
                foreach (var name in names)
                {
                    var parts = name.Groups[1].Value == "$"
                        ? Regex.Split(name.Groups[2].Value, @"\{[^{}]*\}") : [name.Groups[2].Value];
                    var pattern = string.Join($"({string.Join('|', suffixes)})", parts.Select(Regex.Escape));
                    Assert.True(entries.Any(e => Regex.IsMatch(e, $"^{pattern}$")),
                        $"{type.Name} launches {name.Value}; its source defines {string.Join(", ", entries.Order())}");
                    launches++;
                }
            }
        }
        Assert.True(launches >= 6, $"found only {launches} launches in {Library}");
        foreach (var cu in CudaSource.All.Where(n => n.EndsWith(".cu", StringComparison.Ordinal)))
            Assert.Contains(cu, loadedByLaunchers);
    }

    /// <summary>The comma-separated arguments of a call whose "(" ends just before <paramref name="start"/>.</summary>
    static List<string> Arguments(string text, int start)
    {
        var args = new List<string>();
        int depth = 0, from = start;
        for (int i = start; i < text.Length; i++)
        {
            char c = text[i];
            if (c == '"') { i++; while (text[i] != '"') i += text[i] == '\\' ? 2 : 1; }
            else if (c is '(' or '{' or '[') depth++;
            else if (c is ')' or '}' or ']' && depth > 0) depth--;
            else if (c == ',' && depth == 0) { args.Add(text[from..i]); from = i + 1; }
            else if (c == ')') { args.Add(text[from..i]); return args; }
        }
        throw new InvalidDataException($"unbalanced call at {start}");
    }

    /// <summary>The names of the <c>extern "C" __global__</c> functions of a CUDA source once its function-like macros
    /// are expanded: a small model of the C preprocessor (parameters, __VA_ARGS__, ## pasting, a macro passed as an
    /// argument), enough for the X-macros that instantiate our kernels per value type.</summary>
    static HashSet<string> Entries(string source)
    {
        var text = Regex.Replace(source, @"/\*.*?\*/", " ", RegexOptions.Singleline);
        text = Regex.Replace(text, @"//[^\n]*", "").Replace("\\\n", " ");
        var macros = new Dictionary<string, (string[] Parameters, string Body)>();
        var code = new StringBuilder();
        foreach (var line in text.Split('\n'))
        {
            var define = Regex.Match(line, @"^\s*#\s*define\s+(\w+)\(([^)]*)\)(.*)$");
            var parameters = define.Groups[2].Value.Split(',').Select(p => p.Trim()).ToArray();
            if (define.Success) macros[define.Groups[1].Value] = (parameters, define.Groups[3].Value);
            else if (!line.TrimStart().StartsWith('#')) code.Append(line).Append('\n');
        }
        string expanded = code.ToString();
        for (int pass = 0; pass < 16; pass++)
        {
            var result = new StringBuilder();
            int at = 0;
            foreach (Match m in Regex.Matches(expanded, @"\b(\w+)\s*\("))
            {
                if (m.Index < at || !macros.TryGetValue(m.Groups[1].Value, out var macro)) continue;
                var args = Arguments(expanded, m.Index + m.Length);
                var values = new Dictionary<string, string>();
                for (int i = 0; i < macro.Parameters.Length; i++)
                    if (macro.Parameters[i] == "...") values["__VA_ARGS__"] = string.Join(",", args.Skip(i));
                    else values[macro.Parameters[i]] = i < args.Count ? args[i].Trim() : "";
                var body = Regex.Replace(macro.Body, @"\b\w+\b", w => values.GetValueOrDefault(w.Value, w.Value));
                result.Append(expanded, at, m.Index - at).Append(Regex.Replace(body, @"\s*##\s*", ""));
                at = m.Index + m.Length + args.Sum(a => a.Length + 1);
            }
            string next = result.Append(expanded, at, expanded.Length - at).ToString();
            if (next == expanded) break;
            expanded = next;
        }
        var entry = new Regex(@"extern\s+""C""\s+__global__\s+void\s+(\w+)\s*\(");
        return [.. entry.Matches(expanded).Select(m => m.Groups[1].Value)];
    }
}
