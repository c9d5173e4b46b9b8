using RetinaNet.Boxes;
using System.Text.Json;
using RetinaNet.Model;
using static TorchSharp.torch;

namespace RetinaNet.Checkpoints;

/// <summary>Training progress stored beside the weights (ODTK's 'iteration', 'optimizer', 'scheduler'; ours adds
/// 'training': data sampler position, loss scale, seed).</summary>
public sealed record TrainingState(long Iteration, object? Optimizer = null, object? Scheduler = null,
    object? Extra = null);

public sealed record LoadedCheckpoint(RetinaNetModel Model, TrainingState? State);

/// <summary>Model checkpoints with ODTK's content: <c>{'backbone': [...], 'classes': n, 'state_dict': {...},
/// 'ratios': [...], 'scales': [...]}</c>, for rotated boxes 'angles': [...] and 'rotated_bbox': True, plus, when
/// training, 'iteration', 'optimizer', 'scheduler'; ours adds
/// 'anchor_ious' and 'inference'. A <c>.pth</c> is a torch.save zip that PyTorch and ODTK read back; a
/// <c>.safetensors</c> holds the state dict with the configuration as JSON metadata. Writes are atomic
/// (temporary file, then rename); loading never executes anything from the file.</summary>
public static class Checkpoint
{
    static readonly InferenceConfig Defaults = new();

    public static void Save(string path, RetinaNetModel model, TrainingState? state = null)
    {
        var fields = Fields(model.Config);
        var weights = StateDict.Of(model).ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu());
        try
        {
            if (IsSafeTensors(path))
            {
                if (state is not null)
                    throw new ArgumentException($"{path}: training state needs a .pth checkpoint, not .safetensors");
                SafeTensorsFile.Save(path, weights,
                    new Dictionary<string, string> { [MetadataKey] = JsonSerializer.Serialize(fields) });
                return;
            }
            // ODTK's order: backbone, classes, state_dict, then the rest
            var root = new OrderedDictionary<string, object?>(fields.Take(2))
            {
                ["state_dict"] = new OrderedDictionary<string, object?>(
                    weights.Select(kv => new KeyValuePair<string, object?>(kv.Key, kv.Value))),
            };
            foreach (var (key, value) in fields.Skip(2)) root[key] = value;
            if (state is not null)
            {
                root["iteration"] = state.Iteration;
                if (state.Optimizer is not null) root["optimizer"] = state.Optimizer;
                if (state.Scheduler is not null) root["scheduler"] = state.Scheduler;
                if (state.Extra is not null) root["training"] = state.Extra;
            }
            TorchCheckpointFile.Save(path, root);
        }
        finally
        {
            foreach (var t in weights.Values) t.Dispose();
        }
    }

    /// <summary>The configuration as the checkpoint's fields, one form for both files: the .pth's dict entries
    /// (ODTK's names) and, as JSON, the .safetensors metadata.</summary>
    static OrderedDictionary<string, object?> Fields(DetectorConfig config)
    {
        var fields = new OrderedDictionary<string, object?>
        {
            ["backbone"] = config.Backbones.Cast<object?>().ToList(),
            ["classes"] = (long)config.Classes,
            ["ratios"] = config.Anchors.Ratios.Cast<object?>().ToList(),
            ["scales"] = config.Anchors.Scales.Cast<object?>().ToList(),
        };
        if (config.Rotated)
        {
            fields["angles"] = config.Anchors.Angles.Cast<object?>().ToList();
            fields["rotated_bbox"] = true;
        }
        fields["anchor_ious"] = new List<object?> { config.AnchorIous.Background, config.AnchorIous.Foreground };
        fields["inference"] = new OrderedDictionary<string, object?>
        {
            ["threshold"] = config.Inference.ScoreThreshold, ["top_n"] = (long)config.Inference.TopN,
            ["nms"] = config.Inference.NmsThreshold, ["detections"] = (long)config.Inference.Detections,
            ["resize"] = (long)config.Inference.Resize, ["max_size"] = (long)config.Inference.MaxSize,
        };
        if (config.Categories.Count > 0)
            fields["categories"] = config.Categories.Select(c => (object?)new List<object?> { c.Id, c.Name }).ToList();
        return fields;
    }

    /// <summary>Loads an ODTK or our own checkpoint (.pth or .safetensors) into a new model on the CPU.</summary>
    public static LoadedCheckpoint Load(string path)
    {
        if (IsSafeTensors(path)) return LoadSafeTensors(path);
        var root = TorchCheckpointFile.Load(path) as OrderedDictionary<string, object?>
            ?? throw new CheckpointFormatException(
                $"{path}: not a RetinaNet checkpoint (expected a dict with 'backbone', 'classes' and 'state_dict')");
        if (!root.ContainsKey("state_dict") || !root.ContainsKey("backbone"))
        {
            bool bareWeights = root.Values.All(v => v is Tensor);
            throw new CheckpointFormatException(bareWeights
                ? $"{path}: holds bare weights (a state dict), not a RetinaNet checkpoint; " +
                    "pass ImageNet backbone weights with --backbone-weights"
                : $"{path}: not a RetinaNet checkpoint: it lacks 'backbone' and 'state_dict' " +
                    $"(keys: {string.Join(", ", root.Keys.Take(6))})");
        }
        var config = FromFields(root, path);
        var weights = (root["state_dict"] as OrderedDictionary<string, object?> ?? throw Bad(path, "state_dict"))
            .ToDictionary(kv => kv.Key, kv => kv.Value as Tensor ?? throw Bad(path, $"state_dict['{kv.Key}']"));
        var model = Build(path, config, weights);
        TrainingState? state = root.TryGetValue("iteration", out var it) && it is long iteration
            ? new TrainingState(iteration, root.GetValueOrDefault("optimizer"), root.GetValueOrDefault("scheduler"),
                root.GetValueOrDefault("training"))
            : null;
        return new LoadedCheckpoint(model, state);
    }

    /// <summary>The configuration from a checkpoint's fields (<see cref="Fields"/>; ODTK's lack some).</summary>
    static DetectorConfig FromFields(IReadOnlyDictionary<string, object?> root, string path)
    {
        var backbones = root["backbone"] switch
        {
            string s => [s],
            IEnumerable<object?> list => list.Select(x => x as string ?? throw Bad(path, "backbone")).ToList(),
            _ => throw Bad(path, "backbone"),
        };
        var config = new DetectorConfig
        {
            Backbones = backbones,
            Classes = (int)(root["classes"] as long? ?? throw Bad(path, "classes")),
            Anchors = new AnchorConfig
            {
                Ratios = Numbers(root, "ratios", path) ?? AnchorConfig.DefaultRatios,
                Scales = Numbers(root, "scales", path) ?? AnchorConfig.DefaultScales,
                Angles = root.TryGetValue("rotated_bbox", out var rotated) && rotated is true
                    ? Numbers(root, "angles", path) ?? AnchorConfig.DefaultAngles : [],
            },
        };
        if (root.TryGetValue("categories", out var categories))
            config = config with { Categories = Categories(categories, path) };
        if (Numbers(root, "anchor_ious", path) is { Count: 2 } ious)
            config = config with { AnchorIous = (ious[0], ious[1]) };
        if (root.TryGetValue("inference", out var inf) && inf is OrderedDictionary<string, object?> d)
            config = config with
            {
                Inference = new InferenceConfig
                {
                    ScoreThreshold = ToDouble(d["threshold"]), TopN = (int)ToDouble(d["top_n"]),
                    NmsThreshold = ToDouble(d["nms"]), Detections = (int)ToDouble(d["detections"]),
                    // older checkpoints of ours lack the input size: the defaults
                    Resize = d.TryGetValue("resize", out var r) ? (int)ToDouble(r) : Defaults.Resize,
                    MaxSize = d.TryGetValue("max_size", out var m) ? (int)ToDouble(m) : Defaults.MaxSize,
                },
            };
        return config;
    }

    const string MetadataKey = "retinanet";

    static LoadedCheckpoint LoadSafeTensors(string path)
    {
        var weights = SafeTensorsFile.Load(path, out var metadata);
        DetectorConfig config;
        try { config = ConfigOf(metadata, path); }
        catch
        {
            foreach (var t in weights.Values) t.Dispose();
            throw;
        }
        return new LoadedCheckpoint(Build(path, config, weights), null);
    }

    static DetectorConfig ConfigOf(IReadOnlyDictionary<string, string> metadata, string path)
    {
        if (!metadata.TryGetValue(MetadataKey, out var json))
            throw new CheckpointFormatException($"{path}: a .safetensors file without RetinaNet metadata; " +
                "pass ImageNet backbone weights with --backbone-weights");
        try
        {
            using var doc = JsonDocument.Parse(json);
            var fields = FromJson(doc.RootElement) as OrderedDictionary<string, object?> ?? throw Bad(path, "metadata");
            return fields.ContainsKey("backbone") ? FromFields(fields, path)
                : (JsonSerializer.Deserialize<LegacyConfigRecord>(json) ?? throw Bad(path, "metadata")).ToConfig();
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException($"{path}: its RetinaNet metadata is not valid JSON: {e.Message}");
        }
    }

    /// <summary>JSON as the pickle reader's values: objects as ordered dicts, arrays as lists, whole numbers as
    /// long.</summary>
    static object? FromJson(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => new OrderedDictionary<string, object?>(
            e.EnumerateObject().Select(p => KeyValuePair.Create(p.Name, FromJson(p.Value)))),
        JsonValueKind.Array => e.EnumerateArray().Select(FromJson).ToList(),
        JsonValueKind.Number => e.TryGetInt64(out long l) ? (object)l : e.GetDouble(),
        JsonValueKind.String => e.GetString(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };

    static RetinaNetModel Build(string path, DetectorConfig config, Dictionary<string, Tensor> weights)
    {
        RetinaNetModel? model = null;
        try
        {
            model = new RetinaNetModel(config);
            StateDict.Load(model, weights, path);
            return model;
        }
        catch (ArgumentException e)
        {
            model?.Dispose();
            throw new CheckpointFormatException($"{path}: {e.Message}");
        }
        catch
        {
            model?.Dispose();
            throw;
        }
        finally
        {
            foreach (var t in weights.Values) t.Dispose();
        }
    }

    static bool IsSafeTensors(string path) => path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase);

    static CheckpointFormatException Bad(string path, string key) =>
        new($"{path}: checkpoint field '{key}' is missing or of the wrong type");

    static IReadOnlyList<double>? Numbers(IReadOnlyDictionary<string, object?> root, string key, string path) =>
        root.TryGetValue(key, out var v) && v is not null
            ? v is IEnumerable<object?> list ? list.Select(ToDouble).ToList() : throw Bad(path, key)
            : null;

    static List<Category> Categories(object? value, string path) =>
        (value as IEnumerable<object?> ?? throw Bad(path, "categories"))
            .Select(c => c is IList<object?> { Count: 2 } pair && pair[0] is long id && pair[1] is string name
                ? new Category(id, name) : throw Bad(path, "categories")).ToList();

    static double ToDouble(object? v) => v switch
    {
        double d => d, long l => l, int i => i,
        _ => throw new CheckpointFormatException(
            $"expected a number in the checkpoint, found {v?.GetType().Name ?? "None"}"),
    };

    /// <summary>The .safetensors metadata our files had before it became <see cref="Fields"/>' JSON: read
    /// only.</summary>
    sealed record LegacyConfigRecord(string[] Backbones, int Classes, double[] Ratios, double[] Scales,
        double[] AnchorIous, double ScoreThreshold, int TopN, double Nms, int Detections, int? Resize = null,
        int? MaxSize = null, Category[]? Categories = null, double[]? Angles = null)
    {
        public DetectorConfig ToConfig() => new()
        {
            Backbones = Backbones, Classes = Classes,
            Anchors = new AnchorConfig { Ratios = Ratios, Scales = Scales, Angles = Angles ?? [] },
            AnchorIous = (AnchorIous[0], AnchorIous[1]), Categories = Categories ?? [],
            Inference = new InferenceConfig
            {
                ScoreThreshold = ScoreThreshold, TopN = TopN, NmsThreshold = Nms, Detections = Detections,
                Resize = Resize ?? Defaults.Resize, MaxSize = MaxSize ?? Defaults.MaxSize,
            },
        };
    }
}

/// <summary>ImageNet weights for the backbone bodies, in torchvision's layout and names (.pth or
/// .safetensors).</summary>
public static class BackboneWeights
{
    public static void Load(RetinaNetModel model, string path)
    {
        Dictionary<string, Tensor> weights;
        if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) weights = SafeTensorsFile.Load(path);
        else
        {
            object? root = TorchCheckpointFile.Load(path);
            if (root is OrderedDictionary<string, object?> outer && outer.Values.Any(v => v is not Tensor))
                root = outer.GetValueOrDefault("state_dict") ?? outer.GetValueOrDefault("model");
            weights = (root as OrderedDictionary<string, object?>)?.Where(kv => kv.Value is Tensor)
                .ToDictionary(kv => kv.Key, kv => (Tensor)kv.Value!)
                ?? throw new CheckpointFormatException(
                    $"{path}: expected a state dict of backbone weights (torchvision layout)");
        }
        try
        {
            foreach (var (name, fpn) in model.BackboneModules)
            {
                var unused = fpn.Body.UnusedTorchvisionPrefixes;
                try { StateDict.Load(fpn.Body, weights, path, ignoreSource: k => unused.Any(k.StartsWith)); }
                catch (InvalidDataException e)
                {
                    throw new InvalidDataException(
                        $"{e.Message} (is it torchvision's {Backbones.TorchvisionNames[name]} for {name}?)");
                }
            }
        }
        finally
        {
            foreach (var t in weights.Values) t.Dispose();
        }
    }
}
