using System.Globalization;
using System.Text;

namespace RetinaNet.Cli;

/// <summary>A bad command line: printed as one line, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>How many values an option takes: a flag (0), exactly N, one or more (+), or any (*).</summary>
public enum Arity { Flag, One, Two, Three, OneOrMore, Any }

/// <param name="DefaultFrom">Where the value comes from when the option is not given, before
/// <paramref name="Default"/> (e.g. "the model's"): help shows both.</param>
public sealed record OptionSpec(string Name, Arity Arity, string Help, string? Meta = null, string[]? Default = null,
    bool Required = false, string? DefaultFrom = null)
{
    public int? Fixed => Arity switch { Arity.One => 1, Arity.Two => 2, Arity.Three => 3, _ => null };
}

public sealed record CommandSpec(string Name, string Help, IReadOnlyList<(string Name, string Help)> Positionals,
    IReadOnlyList<OptionSpec> Options)
{
    public OptionSpec? Find(string name) => Options.FirstOrDefault(o => o.Name == name);

    public string Usage()
    {
        var sb = new StringBuilder();
        sb.Append($"usage: retinanet {Name}");
        foreach (var (p, _) in Positionals) sb.Append($" {p.ToUpperInvariant()}");
        sb.AppendLine(" [options]").AppendLine().AppendLine(Help).AppendLine();
        foreach (var (p, h) in Positionals) sb.AppendLine($"  {p.ToUpperInvariant(),-34} {h}");
        foreach (var o in Options)
        {
            string meta = o.Arity switch
            {
                Arity.Flag => "", Arity.OneOrMore => $" {o.Meta ?? "V"} [...]", Arity.Any => $" [{o.Meta ?? "V"} ...]",
                _ => " " + (o.Meta ?? "V"),
            };
            string from = o.DefaultFrom is null ? "" : o.DefaultFrom + ", else ";
            string def = o.Default is { Length: > 0 } d ? $" (default: {from}{string.Join(' ', d)})"
                : o.DefaultFrom is not null ? $" (default: {o.DefaultFrom})" : o.Required ? " (required)" : "";
            sb.AppendLine($"  {o.Name + meta,-34} {o.Help}{def}");
        }
        return sb.ToString();
    }
}

/// <summary>Parsed values of one command. Commands read them through their declared options
/// (<see cref="Get{T}"/>); the accessors by name below are what those read with, and name the option in their
/// errors.</summary>
public sealed class ParsedArgs
{
    readonly Dictionary<string, List<string>> values = new();
    readonly CommandSpec spec;

    public ParsedArgs(CommandSpec spec) => this.spec = spec;

    public string Command => spec.Name;
    public Dictionary<string, string> Positionals { get; } = new();

    internal void Set(string name, List<string> v) => values[name] = v;

    /// <summary>The option's value: given, else the command's default for it.</summary>
    public T Get<T>(Option<T> option) => option.Read(Declared(option));

    /// <summary>Given on the command line (not filled in from the option's default).</summary>
    public bool Has(Option option) => Declared(option).values.ContainsKey(option.Name);

    /// <summary>The value only when given on the command line: null lets a stored value (a checkpoint's) win over
    /// the default.</summary>
    public T? Given<T>(Option<T> option) where T : struct => Has(option) ? Get(option) : null;

    /// <summary>Which of <paramref name="options"/> came first on the command line, if any.</summary>
    public Option? FirstGiven(params Option[] options)
        => values.Keys.Select(name => options.FirstOrDefault(o => o.Name == name)).FirstOrDefault(o => o is not null);

    // reading an option the command does not declare is a bug of the command, not of its user
    ParsedArgs Declared(Option option) => spec.Find(option.Name) is not null ? this
        : throw new InvalidOperationException($"{option.Name} is not an option of '{spec.Name}'");

    /// <summary>Given on the command line (not filled in from the option's default).</summary>
    public bool Has(string name) => values.ContainsKey(name);
    public bool Flag(string name) => values.ContainsKey(name);

    public IReadOnlyList<string> Strings(string name) =>
        values.TryGetValue(name, out var v) ? v : (spec.Find(name)?.Default ?? []);

    public string? String(string name) => Strings(name) is { Count: > 0 } v ? v[^1] : null;

    public int Int(string name) => Ints(name).Single();
    public double Double(string name) => Doubles(name).Single();
    public int? OptionalInt(string name) => Strings(name).Count == 0 ? null : Int(name);
    /// <summary>The value only when given on the command line: null lets a stored value (a checkpoint's) win over
    /// the default.</summary>
    public int? GivenInt(string name) => Has(name) ? Int(name) : null;
    public double? GivenDouble(string name) => Has(name) ? Double(name) : null;

    public int[] Ints(string name) => Strings(name).Select(v =>
        int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i) ? i
            : throw new UsageException($"{name}: expected an integer, got '{v}'")).ToArray();

    public double[] Doubles(string name) => Strings(name).Select(v =>
        double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d) ? d
            : throw new UsageException($"{name}: expected a number, got '{v}'")).ToArray();
}

/// <summary>argparse-like parsing (ODTK's command line is argparse): <c>--name value</c>, <c>--name=value</c>,
/// multi-value options stop at the next <c>--option</c>.</summary>
public static class ArgParser
{
    public static ParsedArgs Parse(CommandSpec spec, IReadOnlyList<string> args)
    {
        var parsed = new ParsedArgs(spec);
        var positionals = new List<string>();
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (!arg.StartsWith("--") || arg == "--" || IsNegativeNumber(arg))
            {
                positionals.Add(arg);
                continue;
            }
            string name = arg, inline = "";
            bool hasInline = false;
            int eq = arg.IndexOf('=');
            if (eq > 0) { name = arg[..eq]; inline = arg[(eq + 1)..]; hasInline = true; }
            var option = spec.Find(name) ?? throw new UsageException(UnknownOption(spec, name));
            var taken = new List<string>();
            if (hasInline) taken.Add(inline);
            if (option.Arity == Arity.Flag)
            {
                if (hasInline) throw new UsageException($"{name} takes no value");
            }
            else
            {
                int want = option.Fixed ?? int.MaxValue;
                while (taken.Count < want && i + 1 < args.Count
                    && (!args[i + 1].StartsWith("--") || IsNegativeNumber(args[i + 1])))
                    taken.Add(args[++i]);
                if (option.Fixed is int n && taken.Count != n)
                    throw new UsageException($"{name} expects {n} value{(n > 1 ? "s" : "")} ({option.Meta}), got "
                        + $"{taken.Count}");
                if (option.Arity == Arity.OneOrMore && taken.Count == 0)
                    throw new UsageException($"{name} expects at least one value ({option.Meta})");
            }
            parsed.Set(name, taken);
        }
        if (positionals.Count > spec.Positionals.Count)
            throw new UsageException($"unexpected argument '{positionals[spec.Positionals.Count]}' (see: retinanet "
                + $"{spec.Name} --help)");
        for (int p = 0; p < spec.Positionals.Count; p++)
        {
            if (p >= positionals.Count)
                throw new UsageException($"missing {spec.Positionals[p].Name.ToUpperInvariant()}: "
                    + $"{spec.Positionals[p].Help} (usage: retinanet {spec.Name} "
                    + $"{string.Join(' ', spec.Positionals.Select(x => x.Name.ToUpperInvariant()))} [options])");
            parsed.Positionals[spec.Positionals[p].Name] = positionals[p];
        }
        foreach (var o in spec.Options.Where(o => o.Required && !parsed.Has(o.Name)))
            throw new UsageException($"{o.Name} is required: {o.Help}");
        return parsed;
    }

    static bool IsNegativeNumber(string s) => s.Length > 1 && s[0] == '-'
        && double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out _);

    static string UnknownOption(CommandSpec spec, string name)
    {
        var close = spec.Options.Select(o => o.Name).OrderBy(o => Levenshtein(o, name)).First();
        return Levenshtein(close, name) <= 3
            ? $"unknown option {name} for '{spec.Name}' (did you mean {close}?)"
            : $"unknown option {name} for '{spec.Name}' (see: retinanet {spec.Name} --help)";
    }

    static int Levenshtein(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1]
                    + (a[i - 1] == b[j - 1] ? 0 : 1));
        return d[a.Length, b.Length];
    }
}
