using Mono.Cecil;
using Mono.Cecil.Cil;
using Xunit;
using Xunit.Abstractions;

namespace RetinaNet.Tests.Architecture;

/// <summary>The library's folders (namespaces RetinaNet.X) depend on each other in one direction. Every type reference
/// in the compiled library is read (signatures, fields, base types, attributes, and each instruction's operand in
/// method bodies), and each folder may use only the folders below it in <see cref="Layers"/>.</summary>
public class FolderDependencyTests(ITestOutputHelper output)
{
    /// <summary>Bottom first; the root namespace (the public <see cref="Detector"/>) is "Api".</summary>
    public static readonly string[][] Layers =
    [
        ["Core"],         // atomic files, our cache folder, progress lines, Python's number format
        ["Native"],       // libtorch, CUDA, NCCL, nvJPEG entry points; compiled kernels cached on disk
        ["Boxes"],        // anchors, box coding, IoU, NMS, target assignment
        ["Model"],        // backbones, FPN, heads, losses
        ["Checkpoints"],  // ODTK's .pth and safetensors <-> a model
        ["Data"],         // COCO files, images, transforms, loaders
        ["Evaluation"],   // COCO evaluation of detections
        ["Distributed"],  // processes, NCCL collectives, watchdogs
        ["Export"],       // ONNX graphs, INT8
        ["Inference"],    // a model file -> detections (TorchSharp or ONNX Runtime)
        ["Training"],     // the training job; validation through Inference
        ["Api"],          // the public Detector
    ];

    static string FolderOf(string? ns)
    {
        if (ns is null || !ns.StartsWith("RetinaNet", StringComparison.Ordinal)) return "";
        var parts = ns.Split('.');
        return parts.Length == 1 ? "Api" : parts[1];
    }

    static Dictionary<string, Dictionary<string, string>> Edges()
    {
        var path = typeof(Detector).Assembly.Location;
        using var module = ModuleDefinition.ReadModule(path);
        var edges = new Dictionary<string, Dictionary<string, string>>(); // from → to → an example
        void Add(TypeDefinition from, TypeReference? to)
        {
            while (to is TypeSpecification spec && spec.ElementType != to) to = spec.ElementType;
            // types of other assemblies (TorchSharp, and RetinaNet.OnnxRuntime, which sits below the whole library) are
            // outside the layering
            if (to is null || to.Scope is AssemblyNameReference || to.Scope != module && to.Module != module) return;
            var outer = to;
            while (outer.DeclaringType is not null) outer = outer.DeclaringType;
            var owner = from;
            while (owner.DeclaringType is not null) owner = owner.DeclaringType;
            string a = FolderOf(owner.Namespace), b = FolderOf(outer.Namespace);
            if (a == "" || b == "" || a == b) return;
            if (!edges.TryGetValue(a, out var targets)) edges[a] = targets = [];
            targets.TryAdd(b, $"{owner.FullName} → {outer.FullName}");
        }
        void AddGeneric(TypeDefinition from, TypeReference t)
        {
            Add(from, t);
            if (t is GenericInstanceType g) foreach (var arg in g.GenericArguments) AddGeneric(from, arg);
            if (t is TypeSpecification s && s.ElementType != t) AddGeneric(from, s.ElementType);
        }
        foreach (var type in module.GetTypes())
        {
            if (type.BaseType is not null) AddGeneric(type, type.BaseType);
            foreach (var i in type.Interfaces) AddGeneric(type, i.InterfaceType);
            foreach (var f in type.Fields) AddGeneric(type, f.FieldType);
            foreach (var p in type.Properties) AddGeneric(type, p.PropertyType);
            foreach (var m in type.Methods)
            {
                AddGeneric(type, m.ReturnType);
                foreach (var p in m.Parameters) AddGeneric(type, p.ParameterType);
                if (!m.HasBody) continue;
                foreach (var v in m.Body.Variables) AddGeneric(type, v.VariableType);
                foreach (var instruction in m.Body.Instructions)
                {
                    switch (instruction.Operand)
                    {
                        case TypeReference t: AddGeneric(type, t); break;
                        case MemberReference member:
                            AddGeneric(type, member.DeclaringType);
                            if (member is MethodReference mr)
                            {
                                AddGeneric(type, mr.ReturnType);
                                foreach (var p in mr.Parameters) AddGeneric(type, p.ParameterType);
                            }
                            if (member is FieldReference fr) AddGeneric(type, fr.FieldType);
                            break;
                    }
                }
            }
        }
        return edges;
    }

    [Fact]
    public void EveryFolderUsesOnlyTheFoldersBelowIt()
    {
        var layerOf = Layers.SelectMany((l, i) => l.Select(f => (f, i))).ToDictionary(p => p.f, p => p.i);
        var edges = Edges();
        var problems = new List<string>();
        foreach (var (from, targets) in edges.OrderBy(e => e.Key))
        {
            output.WriteLine($"{from} → {string.Join(", ", targets.Keys.Order())}");
            foreach (var (to, example) in targets)
            {
                if (!layerOf.TryGetValue(from, out int a))
                {
                    problems.Add($"folder {from} is not in Layers"); continue;
                }
                if (!layerOf.TryGetValue(to, out int b)) { problems.Add($"folder {to} is not in Layers"); continue; }
                if (b < a) continue;
                problems.Add($"{from} uses {to} ({example})");
            }
        }
        Assert.True(problems.Count == 0, "against the layering:\n" + string.Join("\n", problems.Distinct()));
    }
}
