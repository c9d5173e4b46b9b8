using System.Globalization;
using System.Text;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace RetinaNet.Data.Converters;

/// <summary>YOLO class names, index = position: <c>classes.txt</c> (one name a line, as LabelImg writes) or a
/// <c>data.yaml</c> (Ultralytics) with a top-level <c>names:</c> in one of the simple YAML forms —
/// a list (<c>[a, 'b']</c> or <c>- a</c> lines) or a map of indices (<c>{0: a}</c> or <c>0: a</c> lines).</summary>
public static class YoloClassNames
{
    public static readonly IReadOnlyList<string> FileNames = ["classes.txt", "data.yaml", "data.yml", "dataset.yaml"];

    /// <summary>The first of <see cref="FileNames"/> found in one of <paramref name="folders"/> (searched in order),
    /// or null.</summary>
    public static string? Find(IEnumerable<string> folders) =>
        folders.SelectMany(f => FileNames.Select(n => Path.Combine(f, n))).FirstOrDefault(File.Exists);

    public static IReadOnlyList<string> Load(string path)
    {
        var names = path.EndsWith(".txt", StringComparison.OrdinalIgnoreCase)
            ? FromClassesTxt(File.ReadAllLines(path, Encoding.UTF8), path) : FromYaml(path);
        if (names.Count == 0) throw new BadInputException(path, "lists no class names; give one name per class");
        // COCO categories are matched by name, so two classes may not share one.
        if (names.GroupBy(n => n, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new BadInputException(path,
                $"class name '{twice.Key}' appears twice (classes {names.IndexOf(twice.Key)} and "
                + $"{names.LastIndexOf(twice.Key)}); make the names unique");
        return names;
    }

    static List<string> FromClassesTxt(string[] lines, string path)
    {
        int last = Array.FindLastIndex(lines, l => l.Trim().Length > 0);
        var names = new List<string>();
        for (int i = 0; i <= last; i++)
            names.Add(lines[i].Trim() is { Length: > 0 } name ? name
                : throw new BadInputException(path,
                $"line {i + 1} is empty; class indices are line numbers, so blank lines would shift them"));
        return names;
    }

    static List<string> FromYaml(string path)
    {
        var yaml = new YamlStream();
        try { using var reader = File.OpenText(path); yaml.Load(reader); }
        catch (YamlException e)
        {
            // Its message starts with both marks, "(Line: 3, Col: 5, Idx: 20) - (...): "; the line alone says enough.
            string why = e.Message[(e.Message.IndexOf("): ", StringComparison.Ordinal) + 3)..].ReplaceLineEndings(" ");
            throw new BadInputException(path, $"line {e.Start.Line}: not valid YAML ({why}); fix the syntax there");
        }
        if (yaml.Documents.FirstOrDefault()?.RootNode is not YamlMappingNode root
            || !root.Children.TryGetValue(new YamlScalarNode("names"), out var node))
            throw new BadInputException(path,
                "no top-level 'names:' entry; list the class names as names: [a, b] or one '- name' per line");
        var names = new List<string>();
        switch (node)
        {
            case YamlSequenceNode list:
                foreach (var item in list) names.Add(Name(item, names.Count, path));
                break;
            case YamlMappingNode map:
                foreach (var (key, value) in map)
                {
                    if (key is not YamlScalarNode { Value: var k }
                        || !int.TryParse(k, NumberStyles.None, CultureInfo.InvariantCulture, out int i)
                        || i != names.Count)
                        throw new BadInputException(path, $"line {key.Start.Line}: expected class index {names.Count}, "
                            + $"found '{key}'; indices must run 0, 1, 2, ... in order");
                    names.Add(Name(value, names.Count, path));
                }
                break;
            case YamlScalarNode { Value: null or "" }: // "names:" with nothing after it; Load reports the empty list
                break;
            default:
                throw new BadInputException(path, $"line {node.Start.Line}: names must be a list [a, b] or a map "
                    + "{0: a}, or '- name' / 'index: name' entries on the following lines");
        }
        return names;
    }

    static string Name(YamlNode node, int index, string path) =>
        node is YamlScalarNode { Value: { Length: > 0 } name } ? name
        : throw new BadInputException(path, $"line {node.Start.Line}: class {index} "
            + (node is YamlScalarNode ? "has an empty name" : "must be a plain name, not a list or map"));
}
