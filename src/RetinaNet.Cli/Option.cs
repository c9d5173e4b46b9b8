using System.Collections;
using System.Globalization;

namespace RetinaNet.Cli;

/// <summary>An option declared once, as a static field: the <see cref="OptionSpec"/> that parses it and shows it in
/// help. Commands list it in their <see cref="CommandSpec"/> and read it with <see cref="ParsedArgs.Get{T}"/>, so its
/// name is written in one place and a misspelt use does not compile.</summary>
public abstract class Option(OptionSpec spec)
{
    public OptionSpec Spec { get; } = spec;
    public string Name => Spec.Name;

    // lets a command list its options where a CommandSpec wants specs
    public static implicit operator OptionSpec(Option option) => option.Spec;

    public static Option<bool> Flag(string name, string help) => new(new(name, Arity.Flag, help), (a, n) => a.Flag(n));

    /// <summary>One integer; without a default, the command gives one (<see cref="Option{T}.WithDefault"/>).</summary>
    public static Option<int> Int(string name, string help, string meta, int? @default = null)
        => new(new(name, Arity.One, help, meta, Format(@default)), (a, n) => a.Int(n));

    /// <summary>One integer, null when not given (its default is described by <paramref name="defaultFrom"/>).
    /// </summary>
    public static Option<int?> OptionalInt(string name, string help, string meta, string? defaultFrom = null)
        => new(new(name, Arity.One, help, meta, DefaultFrom: defaultFrom), (a, n) => a.OptionalInt(n));

    public static Option<double> Double(string name, string help, string meta, double @default)
        => new(new(name, Arity.One, help, meta, Format(@default)), (a, n) => a.Double(n));

    public static Option<string> String(string name, string help, string meta, string @default)
        => new(new(name, Arity.One, help, meta, [@default]), (a, n) => a.String(n)!);

    public static Option<string> Required(string name, string help, string meta)
        => new(new(name, Arity.One, help, meta, Required: true), (a, n) => a.String(n)!);

    /// <summary>One string, null when not given.</summary>
    public static Option<string?> OptionalString(string name, string help, string meta)
        => new(new(name, Arity.One, help, meta), (a, n) => a.String(n));

    public static Option<int[]> Ints(string name, Arity arity, string help, string meta, params int[] @default)
        => new(new(name, arity, help, meta, Format(@default)), (a, n) => a.Ints(n));

    public static Option<double[]> Doubles(string name, Arity arity, string help, string meta,
        params double[] @default) => new(new(name, arity, help, meta, Format(@default)), (a, n) => a.Doubles(n));

    public static Option<IReadOnlyList<string>> Strings(string name, Arity arity, string help, string meta,
        params string[] @default) => new(new(name, arity, help, meta, Format(@default)), (a, n) => a.Strings(n));

    /// <summary>A default as the parser holds it (and help shows it): invariant strings, null for none.</summary>
    protected static string[]? Format(object? value) => value switch
    {
        null => null,
        string s => [s],
        IEnumerable values when values.Cast<object>().ToArray() is { Length: > 0 } items
            => [.. items.Select(Invariant)],
        IEnumerable => null,
        _ => [Invariant(value)],
    };

    static string Invariant(object value) => Convert.ToString(value, CultureInfo.InvariantCulture)!;
}

/// <summary>An option whose values read as a <typeparamref name="T"/>; the variants keep its name and reading, for
/// a command that shows it with its own help or default.</summary>
public sealed class Option<T>(OptionSpec spec, Func<ParsedArgs, string, T> read) : Option(spec)
{
    internal T Read(ParsedArgs args) => read(args, Name);

    public Option<T> WithHelp(string help) => new(Spec with { Help = help }, read);

    public Option<T> WithDefault(T value) => new(Spec with { Default = Format(value) }, read);

    /// <summary>Help says where the value comes from when not given (e.g. "the model's") before the
    /// default.</summary>
    public Option<T> WithDefaultFrom(string? from) => new(Spec with { DefaultFrom = from }, read);
}
