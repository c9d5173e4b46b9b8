using System.Text.RegularExpressions;
using Mono.Cecil;
using Mono.Cecil.Cil;
using RetinaNet.Cli;
using Xunit;
using Xunit.Abstractions;

namespace RetinaNet.Tests.Architecture;

/// <summary>Option names are strings in the command line's code ("--annotations" read, checked and named in
/// messages), so a typo compiles: every string of our assemblies that names an option names one some command
/// declares (read from the compiled code, so it runs where the sources are not).</summary>
public partial class OptionNameTests(ITestOutputHelper output)
{
    static readonly string[] OurAssemblies = ["RetinaNet.Core", "retinanet", "RetinaNet.Serving"];

    // NVRTC's own flags, passed to the CUDA compiler
    static readonly HashSet<string> NotOurs = ["--fmad", "--gpu-architecture", "--std", "--use_fast_math"];

    [GeneratedRegex(@"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*")]
    private static partial Regex OptionName();

    static HashSet<string> Declared()
    {
        // global ones
        var names = new HashSet<string>(StringComparer.Ordinal) { "--help", "--version", CommandSpecs.Master.Name };
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
        Assert.True(seen > 300, $"only {seen} option names read: the scan missed the code");
        Assert.True(found.Count == 0, $"{found.Count} undeclared option names, first: {found.FirstOrDefault()}");
    }
}
