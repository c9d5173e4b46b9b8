using System.Globalization;
using System.Text;

namespace RetinaNet.Data.Converters;

/// <summary>YOLO class names, index = position: <c>classes.txt</c> (one name a line, as LabelImg writes) or a
/// <c>data.yaml</c> (Ultralytics) with a top-level <c>names:</c> in one of the simple YAML forms —
/// a flow list <c>[a, 'b']</c>, a block list of <c>- a</c> lines, or a map of <c>0: a</c> lines (or <c>{0: a}</c>).
/// Read by hand: no YAML library for four shapes.</summary>
public static class YoloClassNames
{
    public static readonly IReadOnlyList<string> FileNames = ["classes.txt", "data.yaml", "data.yml", "dataset.yaml"];

    /// <summary>The first of <see cref="FileNames"/> found in one of <paramref name="folders"/> (searched in order), or null.</summary>
    public static string? Find(IEnumerable<string> folders) =>
        folders.SelectMany(f => FileNames.Select(n => Path.Combine(f, n))).FirstOrDefault(File.Exists);

    public static IReadOnlyList<string> Load(string path)
    {
        var lines = File.ReadAllLines(path, Encoding.UTF8);
        var names = path.EndsWith(".txt", StringComparison.OrdinalIgnoreCase) ? FromClassesTxt(lines, path) : FromYaml(lines, path);
        if (names.Count == 0) throw new BadInputException(path, "lists no class names; give one name per class");
        // COCO categories are matched by name, so two classes may not share one.
        if (names.GroupBy(n => n, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new BadInputException(path, $"class name '{twice.Key}' appears twice (classes {names.IndexOf(twice.Key)} and {names.LastIndexOf(twice.Key)}); make the names unique");
        return names;
    }

    static List<string> FromClassesTxt(string[] lines, string path)
    {
        int last = Array.FindLastIndex(lines, l => l.Trim().Length > 0);
        var names = new List<string>();
        for (int i = 0; i <= last; i++)
            names.Add(lines[i].Trim() is { Length: > 0 } name ? name
                : throw new BadInputException(path, $"line {i + 1} is empty; class indices are line numbers, so blank lines would shift them"));
        return names;
    }

    static List<string> FromYaml(string[] lines, string path)
    {
        int at = Array.FindIndex(lines, l => l.StartsWith("names:"));
        if (at < 0) throw new BadInputException(path, "no top-level 'names:' entry; list the class names as names: [a, b] or one '- name' per line");
        string rest = StripComment(lines[at]["names:".Length..]).Trim();
        var entries = new List<(string? Key, string Value, int Line)>();
        if (rest.Length > 0)
        {
            bool map = rest.StartsWith('{');
            if (!(rest.StartsWith('[') && rest.EndsWith(']')) && !(map && rest.EndsWith('}')))
                throw new BadInputException(path, $"line {at + 1}: names must be a list [a, b] or a map {{0: a}} on one line, or entries on the following lines");
            foreach (var item in SplitFlow(rest[1..^1]).Where(x => x.Trim().Length > 0))
                entries.Add(map ? KeyValue(item, path, at + 1) : (null, Unquote(item.Trim()), at + 1));
        }
        else
        {
            for (int i = at + 1; i < lines.Length; i++)
            {
                string line = StripComment(lines[i]);
                if (line.Trim().Length == 0) continue;
                if (!char.IsWhiteSpace(line[0]) && !line.StartsWith('-')) break; // the next top-level key
                string item = line.Trim();
                entries.Add(item.StartsWith('-') ? (null, Unquote(item[1..].Trim()), i + 1) : KeyValue(item, path, i + 1));
            }
        }
        var names = new List<string>();
        foreach (var (key, value, line) in entries)
        {
            if (key is not null && (!int.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out int k) || k != names.Count))
                throw new BadInputException(path, $"line {line}: expected class index {names.Count}, found '{key}'; indices must run 0, 1, 2, ... in order");
            names.Add(value.Length > 0 ? value : throw new BadInputException(path, $"line {line}: class {names.Count} has an empty name"));
        }
        return names;
    }

    static (string? Key, string Value, int Line) KeyValue(string item, string path, int line)
    {
        int colon = item.IndexOf(':');
        if (colon <= 0) throw new BadInputException(path, $"line {line}: expected 'index: name' or '- name', found '{item.Trim()}'");
        return (item[..colon].Trim(), Unquote(item[(colon + 1)..].Trim()), line);
    }

    /// <summary>Splits a flow sequence's inside at commas outside quotes.</summary>
    static IEnumerable<string> SplitFlow(string text)
    {
        var current = new StringBuilder();
        char quote = '\0';
        foreach (char c in text)
        {
            if (quote != '\0') { if (c == quote) quote = '\0'; }
            else if (c is '\'' or '"') quote = c;
            else if (c == ',') { yield return current.ToString(); current.Clear(); continue; }
            current.Append(c);
        }
        yield return current.ToString();
    }

    static string StripComment(string line)
    {
        char quote = '\0';
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (quote != '\0') { if (c == quote) quote = '\0'; }
            else if (c is '\'' or '"') quote = c;
            else if (c == '#' && (i == 0 || char.IsWhiteSpace(line[i - 1]))) return line[..i];
        }
        return line;
    }

    static string Unquote(string s) =>
        s.Length >= 2 && s[0] == '\'' && s[^1] == '\'' ? s[1..^1].Replace("''", "'")
        : s.Length >= 2 && s[0] == '"' && s[^1] == '"' ? s[1..^1]
        : s;
}
