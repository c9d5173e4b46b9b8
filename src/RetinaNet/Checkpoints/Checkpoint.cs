using RetinaNet.Boxes;
using System.Text.Json;
using RetinaNet.Model;
using static TorchSharp.torch;

namespace RetinaNet.Checkpoints;

/// <summary>Training progress stored beside the weights (ODTK's 'iteration', 'optimizer', 'scheduler'; ours adds
/// 'training': data sampler position, loss scale, seed).</summary>
public sealed record TrainingState(long Iteration, object? Optimizer = null, object? Scheduler = null, object? Extra = null);

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
        var config = model.Config;
        var weights = StateDict.Of(model).ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu());
        try
        {
            if (IsSafeTensors(path))
            {
                if (state is not null) throw new ArgumentException($"{path}: training state needs a .pth checkpoint, not .safetensors");
                SafeTensorsFile.Save(path, weights, new Dictionary<string, string> { ["retinanet"] = JsonSerializer.Serialize(ConfigRecord.From(config)) });
                return;
            }
            var root = new OrderedDictionary<string, object?>
            {
                ["backbone"] = config.Backbones.Cast<object?>().ToList(),
                ["classes"] = (long)config.Classes,
                ["state_dict"] = new OrderedDictionary<string, object?>(weights.Select(kv => new KeyValuePair<string, object?>(kv.Key, kv.Value))),
                ["ratios"] = config.Anchors.Ratios.Cast<object?>().ToList(),
                ["scales"] = config.Anchors.Scales.Cast<object?>().ToList(),
            };
            if (config.Rotated)
            {
                root["angles"] = config.Anchors.Angles.Cast<object?>().ToList();
                root["rotated_bbox"] = true;
            }
            root["anchor_ious"] = new List<object?> { config.AnchorIous.Background, config.AnchorIous.Foreground };
            root["inference"] = new OrderedDictionary<string, object?>
            {
                ["threshold"] = config.Inference.ScoreThreshold, ["top_n"] = (long)config.Inference.TopN,
                ["nms"] = config.Inference.NmsThreshold, ["detections"] = (long)config.Inference.Detections,
                ["resize"] = (long)config.Inference.Resize, ["max_size"] = (long)config.Inference.MaxSize,
            };
            if (config.Categories.Count > 0)
                root["categories"] = config.Categories.Select(c => (object?)new List<object?> { c.Id, c.Name }).ToList();
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

    /// <summary>Loads an ODTK or our own checkpoint (.pth or .safetensors) into a new model on the CPU.</summary>
    public static LoadedCheckpoint Load(string path)
    {
        if (IsSafeTensors(path)) return LoadSafeTensors(path);
        var root = TorchCheckpointFile.Load(path) as OrderedDictionary<string, object?>
            ?? throw new CheckpointFormatException($"{path}: not a RetinaNet checkpoint (expected a dict with 'backbone', 'classes' and 'state_dict')");
        if (!root.ContainsKey("state_dict") || !root.ContainsKey("backbone"))
        {
            bool bareWeights = root.Values.All(v => v is Tensor);
            throw new CheckpointFormatException(bareWeights
                ? $"{path}: holds bare weights (a state dict), not a RetinaNet checkpoint; pass ImageNet backbone weights with --backbone-weights"
                : $"{path}: not a RetinaNet checkpoint: it lacks 'backbone' and 'state_dict' (keys: {string.Join(", ", root.Keys.Take(6))})");
        }
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
        if (Numbers(root, "anchor_ious", path) is { Count: 2 } ious) config = config with { AnchorIous = (ious[0], ious[1]) };
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
        var weights = (root["state_dict"] as OrderedDictionary<string, object?> ?? throw Bad(path, "state_dict"))
            .ToDictionary(kv => kv.Key, kv => kv.Value as Tensor ?? throw Bad(path, $"state_dict['{kv.Key}']"));
        var model = Build(path, config, weights);
        TrainingState? state = root.TryGetValue("iteration", out var it) && it is long iteration
            ? new TrainingState(iteration, root.GetValueOrDefault("optimizer"), root.GetValueOrDefault("scheduler"), root.GetValueOrDefault("training"))
            : null;
        return new LoadedCheckpoint(model, state);
    }

    static LoadedCheckpoint LoadSafeTensors(string path)
    {
        var weights = SafeTensorsFile.Load(path, out var metadata);
        if (!metadata.TryGetValue("retinanet", out var json))
        {
            foreach (var t in weights.Values) t.Dispose();
            throw new CheckpointFormatException($"{path}: a .safetensors file without RetinaNet metadata; pass ImageNet backbone weights with --backbone-weights");
        }
        var record = JsonSerializer.Deserialize<ConfigRecord>(json) ?? throw Bad(path, "metadata");
        return new LoadedCheckpoint(Build(path, record.ToConfig(), weights), null);
    }

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

    static CheckpointFormatException Bad(string path, string key) => new($"{path}: checkpoint field '{key}' is missing or of the wrong type");

    static IReadOnlyList<double>? Numbers(OrderedDictionary<string, object?> root, string key, string path) =>
        root.TryGetValue(key, out var v) && v is not null
            ? v is IEnumerable<object?> list ? list.Select(ToDouble).ToList() : throw Bad(path, key)
            : null;

    static List<Category> Categories(object? value, string path) =>
        (value as IEnumerable<object?> ?? throw Bad(path, "categories")).Select(c => c is IList<object?> { Count: 2 } pair
            && pair[0] is long id && pair[1] is string name ? new Category(id, name) : throw Bad(path, "categories")).ToList();

    static double ToDouble(object? v) => v switch
    {
        double d => d, long l => l, int i => i,
        _ => throw new CheckpointFormatException($"expected a number in the checkpoint, found {v?.GetType().Name ?? "None"}"),
    };

    /// <summary>The configuration as JSON, for .safetensors metadata.</summary>
    sealed record ConfigRecord(string[] Backbones, int Classes, double[] Ratios, double[] Scales, double[] AnchorIous,
        double ScoreThreshold, int TopN, double Nms, int Detections, int? Resize = null, int? MaxSize = null,
        Category[]? Categories = null, double[]? Angles = null)
    {
        public static ConfigRecord From(DetectorConfig c) => new([.. c.Backbones], c.Classes, [.. c.Anchors.Ratios], [.. c.Anchors.Scales],
            [c.AnchorIous.Background, c.AnchorIous.Foreground], c.Inference.ScoreThreshold, c.Inference.TopN,
            c.Inference.NmsThreshold, c.Inference.Detections, c.Inference.Resize, c.Inference.MaxSize, [.. c.Categories],
            c.Rotated ? [.. c.Anchors.Angles] : null);

        public DetectorConfig ToConfig() => new()
        {
            Backbones = Backbones, Classes = Classes, Anchors = new AnchorConfig { Ratios = Ratios, Scales = Scales, Angles = Angles ?? [] },
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
            weights = (root as OrderedDictionary<string, object?>)?.Where(kv => kv.Value is Tensor).ToDictionary(kv => kv.Key, kv => (Tensor)kv.Value!)
                ?? throw new CheckpointFormatException($"{path}: expected a state dict of backbone weights (torchvision layout)");
        }
        try
        {
            foreach (var (name, fpn) in model.BackboneModules)
            {
                var unused = fpn.Body.UnusedTorchvisionPrefixes;
                try { StateDict.Load(fpn.Body, weights, path, ignoreSource: k => unused.Any(k.StartsWith)); }
                catch (InvalidDataException e)
                {
                    throw new InvalidDataException($"{e.Message} (is it torchvision's {Backbones.TorchvisionNames[name]} for {name}?)");
                }
            }
        }
        finally
        {
            foreach (var t in weights.Values) t.Dispose();
        }
    }
}
