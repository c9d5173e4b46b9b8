using Mono.Cecil;
using Mono.Cecil.Cil;
using Xunit;
using Xunit.Abstractions;

namespace RetinaNet.Tests.Architecture;

/// <summary>No TorchSharp <c>Scalar</c> of ours is a temporary. A Scalar has a finalizer that frees its native value;
/// a temporary one (an implicit conversion such as <c>x.mul(2)</c>, or one TorchSharp makes inside <c>a + b</c>) is
/// unreachable once its handle is read, so a collection on another thread can free it while libtorch still reads it
/// ("Expected false to be true ... toFloat", as a CI run once failed). The rule (docs/ARCHITECTURE.md): constants come
/// from <c>Native.Scalars</c>, computed values are <c>using</c> locals. This test reads every method body of our
/// assemblies and of TorchSharp, so it also finds the TorchSharp members that make such temporaries inside.</summary>
public class ScalarLifetimeTests(ITestOutputHelper output)
{
    static readonly string[] OurAssemblies =
        ["RetinaNet.Core", "retinanet", "RetinaNet.Serving", "RetinaNet.OnnxRuntime", "RetinaNet.Tests"];

    static bool MakesScalar(MethodReference m) =>
        m.ReturnType.FullName == "TorchSharp.Scalar"
        && (m.DeclaringType.FullName == "TorchSharp.ScalarExtensionMethods" || m.Name == "op_Implicit");

    /// <summary>A method that keeps what it makes alive: a <c>using</c> (a finally that calls Dispose), a static
    /// constructor (static readonly fields), or the table of constants itself.</summary>
    static bool KeepsItsScalars(MethodDefinition m) =>
        m.IsConstructor && m.IsStatic
        || Outermost(m.DeclaringType).FullName == "RetinaNet.Native.Scalars"
        || m.Body.ExceptionHandlers.Any(h => h.HandlerType == ExceptionHandlerType.Finally)
           && m.Body.Instructions.Any(i => i.Operand is MethodReference { Name: "Dispose" });

    static TypeDefinition Outermost(TypeDefinition t) => t.DeclaringType is null ? t : Outermost(t.DeclaringType);

    static IEnumerable<(Instruction At, MethodReference Callee)> Calls(MethodDefinition m) =>
        m.HasBody
            ? m.Body.Instructions.Where(i => i.Operand is MethodReference).Select(i => (i, (MethodReference)i.Operand))
            : [];

    static IEnumerable<MethodDefinition> Methods(ModuleDefinition module) =>
        module.GetTypes().SelectMany(t => t.Methods).Where(m => m.HasBody);

    static string Key(MethodReference m) =>
        $"{m.DeclaringType.Name}.{m.Name}({string.Join(",", m.Parameters.Select(p => p.ParameterType.Name))})";

    /// <summary>The TorchSharp methods that make a Scalar they do not keep alive, directly or through another such
    /// TorchSharp method.</summary>
    static HashSet<string> UnsafeTorchSharpMembers(ModuleDefinition torchSharp)
    {
        var methods = Methods(torchSharp).ToList();
        var unsafeKeys = methods
            .Where(m => !KeepsItsScalars(m) && Calls(m).Any(c => MakesScalar(c.Callee)))
            .Select(Key).ToHashSet();
        for (bool grew = true; grew;)
        {
            grew = false;
            foreach (var m in methods)
                if (!unsafeKeys.Contains(Key(m)) && Calls(m).Any(c => c.Callee.DeclaringType.Scope.Name
                        .StartsWith("TorchSharp", StringComparison.Ordinal) && unsafeKeys.Contains(Key(c.Callee))))
                    grew = unsafeKeys.Add(Key(m)) || grew;
        }
        return unsafeKeys;
    }

    /// <summary>file:line of an instruction, from the PDB (shared with the other IL scans).</summary>
    internal static string Where(MethodDefinition m, Instruction at)
    {
        var points = m.DebugInformation.HasSequencePoints ? m.DebugInformation.SequencePoints : null;
        var point = points?.LastOrDefault(p => p.Offset <= at.Offset && !p.IsHidden);
        return point is null
            ? $"{m.DeclaringType.FullName}.{m.Name}"
            : $"{Path.GetFileName(point.Document.Url)}:{point.StartLine} ({m.DeclaringType.Name}.{m.Name})";
    }

    [Fact]
    public void NoMethodOfOursMakesATemporaryScalar()
    {
        string bin = AppContext.BaseDirectory;
        using var torchSharp = ModuleDefinition.ReadModule(Path.Combine(bin, "TorchSharp.dll"));
        var unsafeMembers = UnsafeTorchSharpMembers(torchSharp);
        // the detector itself must see the known cases, or a clean result means nothing
        Assert.Contains("Tensor.add(Tensor)", unsafeMembers);
        Assert.Contains("Tensor.op_Multiply(Tensor,Double)", unsafeMembers);
        Assert.DoesNotContain("Tensor.add(Tensor,Scalar)", unsafeMembers);

        var found = new List<string>();
        foreach (var name in OurAssemblies)
        {
            using var module = ModuleDefinition.ReadModule(Path.Combine(bin, name + ".dll"),
                new ReaderParameters { ReadSymbols = true });
            foreach (var m in Methods(module))
                foreach (var (at, callee) in Calls(m))
                {
                    bool temporary = MakesScalar(callee) && (callee.Name == "op_Implicit" || !KeepsItsScalars(m));
                    bool insideTorchSharp = callee.DeclaringType.Scope.Name.StartsWith("TorchSharp",
                        StringComparison.Ordinal) && unsafeMembers.Contains(Key(callee));
                    // a Scalar where a Tensor is wanted (where(c, x, scalar)) compiles and always throws
                    bool toTensor = callee.Name == "op_Implicit" && callee.ReturnType.Name == "Tensor"
                        && callee.Parameters[0].ParameterType.FullName == "TorchSharp.Scalar";
                    if (temporary || insideTorchSharp || toTensor) found.Add($"{Where(m, at)}: {Key(callee)}");
                }
        }
        foreach (var f in found) output.WriteLine(f);
        Assert.True(found.Count == 0, $"{found.Count} temporary Scalars, first: {found.FirstOrDefault()}");
    }
}
