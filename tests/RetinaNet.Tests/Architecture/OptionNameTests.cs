using System.Text.RegularExpressions;
using Mono.Cecil;
using Mono.Cecil.Cil;
using RetinaNet.Cli;
using Xunit;
using Xunit.Abstractions;

namespace RetinaNet.Tests.Architecture;

/// <summary>The command line declares each option once, as a typed <see cref="Option{T}"/> that its command reads
/// and its messages name; help texts and hints still write option names in prose, where a typo compiles. Read from
/// the compiled code, so it runs where the sources are not: every string of our assemblies that names an option names
/// one some command declares, and the command line writes a bare name only where it declares it.</summary>
public partial class OptionNameTests(ITestOutputHelper output)
{
    static readonly string[] OurAssemblies = ["RetinaNet.Core", "retinanet", "RetinaNet.Serving"];

    // the global options the entry point handles itself, before any command
    static readonly HashSet<string> Globals = ["--help", "--version"];

    // NVRTC's own flags, passed to the CUDA compiler
    static readonly HashSet<string> NotOurs = ["--fmad", "--gpu-architecture", "--std", "--use_fast_math"];

    [GeneratedRegex(@"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*")]
    private static partial Regex OptionName();

    static HashSet<string> Declared()
    {
        // global ones
        var names = new HashSet<string>(Globals, StringComparer.Ordinal) { CommandLine.Master.Name };
        foreach (var command in CommandRegistry.All)
            foreach (int gpus in new[] { 0, 1, 2 })
                foreach (var option in command.Spec(gpus).Options)
                    names.Add(option.Name);
        return names;
    }

    [Fact]
    public void EveryOptionOurCodeNamesIsDeclaredBySomeCommand()
    {
        var declared = Declared();
        Assert.Contains("--annotations", declared); // the registry was read
        var found = new List<string>();
        int seen = 0;
        foreach (var name in OurAssemblies)
        {
            using var module = ModuleDefinition.ReadModule(Path.Combine(AppContext.BaseDirectory, name + ".dll"),
                new ReaderParameters { ReadSymbols = true });
            foreach (var m in module.GetTypes().SelectMany(t => t.Methods).Where(m => m.HasBody))
                foreach (var i in m.Body.Instructions.Where(i => i.OpCode == OpCodes.Ldstr))
                    foreach (Match option in OptionName().Matches((string)i.Operand))
                    {
                        seen++;
                        if (!declared.Contains(option.Value) && !NotOurs.Contains(option.Value))
                            found.Add($"{ScalarLifetimeTests.Where(m, i)}: {option.Value} in \"{i.Operand}\"");
                    }
        }
        foreach (var f in found) output.WriteLine(f);
        // the command line's declarations alone are over a hundred
        Assert.True(seen > 140, $"only {seen} option names read: the scan missed the code");
        Assert.True(found.Count == 0, $"{found.Count} undeclared option names, first: {found.FirstOrDefault()}");
    }

    /// <summary>A string that is exactly an option's name ("--batch") is its declaration, a static field's
    /// initializer: a command that read or named an option by a string of its own would compile with a typo.</summary>
    [Fact]
    public void TheCommandLineWritesAnOptionsNameOnlyWhereItDeclaresIt()
    {
        using var module = ModuleDefinition.ReadModule(Path.Combine(AppContext.BaseDirectory, "retinanet.dll"),
            new ReaderParameters { ReadSymbols = true });
        var found = new List<string>();
        int declarations = 0;
        foreach (var m in module.GetTypes().SelectMany(t => t.Methods).Where(m => m.HasBody))
            foreach (var i in m.Body.Instructions.Where(i => i.OpCode == OpCodes.Ldstr))
            {
                var text = (string)i.Operand;
                if (OptionName().Match(text) is not { Success: true } name || name.Length != text.Length
                    || Globals.Contains(text)) continue;
                if (m.IsConstructor && m.IsStatic) declarations++;
                else found.Add($"{ScalarLifetimeTests.Where(m, i)}: \"{text}\"");
            }
        foreach (var f in found) output.WriteLine(f);
        Assert.True(declarations > 100, $"only {declarations} declarations read: the scan missed them");
        Assert.True(found.Count == 0, $"{found.Count} option names written outside declarations, first: "
            + found.FirstOrDefault());
    }

    [Fact]
    public void EachCommandDeclaresAnOptionOnce()
    {
        foreach (var command in CommandRegistry.All)
            foreach (int gpus in new[] { 0, 1, 2 })
            {
                var spec = command.Spec(gpus);
                Assert.Equal(command.Name, spec.Name);
                var twice = spec.Options.GroupBy(o => o.Name).Where(g => g.Count() > 1).Select(g => g.Key);
                Assert.True(!twice.Any(), $"{command.Name} declares {string.Join(", ", twice)} more than once");
                Assert.DoesNotContain(spec.Options, o => Globals.Contains(o.Name) || o.Name == CommandLine.Master.Name);
                Assert.Equal(spec.Positionals.Count, spec.Positionals.Select(p => p.Name).Distinct().Count());
            }
    }
}
