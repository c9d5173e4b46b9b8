using RetinaNet.Boxes;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RetinaNet.Model;

/// <summary>Raw head outputs per pyramid level: classification logits [B, A*C, H, W] (channel a*C + c)
/// and box deltas [B, A*K, H, W] (channel a*K + k; K = 4, or 6 for rotated boxes), ODTK's layout. Where
/// <c>ClassBias</c> is set (<see cref="RetinaNetModel.Forward"/> asked to defer it), the logits still lack that
/// per-channel bias [A*C], which their reader adds; it is the class head's own parameter, not owned here.</summary>
public sealed record HeadOutputs(Tensor[] ClassLogits, Tensor[] BoxDeltas, Tensor? ClassBias = null) : IDisposable
{
    public void Dispose()
    {
        foreach (var t in ClassLogits.Concat(BoxDeltas)) t.Dispose();
    }
}

/// <summary>RetinaNet (Lin et al. 2017) as ODTK builds it: one or more FPN backbones whose levels are
/// concatenated, and classification/box heads shared by all levels. State-dict names follow ODTK
/// (<c>backbones.ResNet50FPN.features.layer1.0.conv1.weight</c>, <c>cls_head.8.bias</c>).</summary>
public sealed class RetinaNetModel : nn.Module<Tensor, HeadOutputs>,
    IOnnxExportable<(string[] ClassLogits, string[] BoxDeltas)>
{
    public const double ClassPrior = 0.01;

    readonly BackboneSet backbones;
    readonly Sequential cls_head, box_head;
    readonly Conv2d[] classConvs, boxConvs; // the heads' convolutions, in order
    // each head tower's conv + ReLU layers as single cuDNN calls, for inference (PrepareForInference)
    FusedConvolution[]? fusedClassTower, fusedBoxTower;

    public DetectorConfig Config { get; private set; }

    /// <summary>Which of our CUDA kernels this model's frozen batch norms, loss and post-processing run (the trainer
    /// and the detection runner read them here).</summary>
    public Native.KernelOptions Kernels { get; private set; }

    /// <summary>Post-processing settings are not weights: infer and export may change them per run.</summary>
    public void UseInferenceSettings(InferenceConfig settings)
    {
        settings.Validate();
        Config = Config with { Inference = settings };
    }

    /// <summary>Names the classes: the training annotations' categories in class order.</summary>
    public void UseCategories(IReadOnlyList<Category> categories)
    {
        if (categories.Count > Config.Classes)
            throw new ArgumentException($"{categories.Count} categories for {Config.Classes} classes");
        Config = Config with { Categories = categories };
    }

    /// <param name="kernels">null: <see cref="Native.KernelOptions.Default"/>.</param>
    public RetinaNetModel(DetectorConfig config, Native.KernelOptions? kernels = null) : base("RetinaNet")
    {
        config.Validate();
        Native.CpuNumerics.Ensure(); // NNPACK off: it only prints warnings on CPUs it does not support
        Config = config;
        backbones = new BackboneSet(config.Backbones);
        int anchors = config.Anchors.Count;
        cls_head = MakeHead(config.Classes * anchors);
        box_head = MakeHead(config.BoxValues * anchors);
        classConvs = cls_head.children().OfType<Conv2d>().ToArray();
        boxConvs = box_head.children().OfType<Conv2d>().ToArray();
        RegisterComponents();
        UseKernels(kernels ?? Native.KernelOptions.Default);
    }

    /// <summary>Which of our kernels this model and what runs it use from now on (a loaded checkpoint's are the
    /// defaults).</summary>
    [System.Diagnostics.CodeAnalysis.MemberNotNull(nameof(Kernels))]
    public void UseKernels(Native.KernelOptions kernels)
    {
        Kernels = kernels;
        foreach (var norm in modules().OfType<FrozenBatchNorm2d>()) norm.Kernels = kernels;
        foreach (var body in modules().OfType<FeatureBody>()) body.Kernels = kernels;
    }

    public int Classes => Config.Classes;
    public int AnchorsPerLocation => Config.Anchors.Count;
    /// <summary>Input height and width must be multiples of this.</summary>
    public int Stride => PyramidLevels.InputMultiple;
    public IEnumerable<(string Name, Fpn Backbone)> BackboneModules
    {
        get { foreach (var (name, module) in backbones.named_children()) yield return (name, (Fpn)module); }
    }

    static Sequential MakeHead(long outChannels)
    {
        var layers = new List<(string, nn.Module<Tensor, Tensor>)>();
        for (int i = 0; i < 4; i++)
        {
            layers.Add(((2 * i).ToString(), nn.Conv2d(Fpn.Channels, Fpn.Channels, 3, padding: 1)));
            layers.Add(((2 * i + 1).ToString(), nn.ReLU(inplace: true)));
        }
        layers.Add(("8", nn.Conv2d(Fpn.Channels, outChannels, 3, padding: 1)));
        return nn.Sequential(layers);
    }

    /// <summary>ODTK's initialisation without a checkpoint: body convs as torchvision (Kaiming normal, fan-out), FPN
    /// convs Xavier-uniform, head convs N(0, 0.01) with zero bias, class bias at the 0.01 prior. Every parameter is
    /// drawn from a generator of its own seeded with <paramref name="seed"/>, never torch's global one: another
    /// thread drawing from that (a model built, a random tensor) between a manual_seed and this call made two seeded
    /// trainings start from different weights.</summary>
    public void Initialize(long seed)
    {
        using var noGrad = no_grad();
        using var generator = new Generator(unchecked((ulong)seed));
        foreach (var (_, fpn) in BackboneModules)
        {
            foreach (var (_, module) in fpn.Body.named_modules())
                if (module is Conv2d conv)
                    FillNormal(conv.weight, Math.Sqrt(2.0 / Fans(conv.weight).Out), generator); // Kaiming, fan-out
            foreach (var conv in fpn.OwnConvolutions)
            {
                var (fanIn, fanOut) = Fans(conv.weight);
                var bound = Math.Sqrt(6.0 / (fanIn + fanOut)); // Xavier-uniform, gain 1
                FillUniform(conv.weight, bound, generator);
                nn.init.zeros_(conv.bias!);
            }
        }
        InitializeHead(cls_head, generator, -Math.Log((1 - ClassPrior) / ClassPrior));
        InitializeHead(box_head, generator, 0);
    }

    /// <summary>Sets every frozen batch norm of the backbones from one batch of real images, in a single forward pass
    /// (each layer sees its input already normalised by the layers before it). For training from random
    /// weights.</summary>
    public void CalibrateBatchNorm(Tensor images)
    {
        var norms = BackboneModules.SelectMany(b => b.Backbone.Body.modules()).OfType<FrozenBatchNorm2d>().ToList();
        foreach (var n in norms) n.Calibrating = true;
        try
        {
            using var noGrad = no_grad();
            foreach (var (_, fpn) in BackboneModules) foreach (var t in fpn.Body.forward(images)) t.Dispose();
        }
        finally
        {
            foreach (var n in norms) n.Calibrating = false;
        }
    }

    /// <summary>For a model that will only run inference from here on (infer owns it): every frozen batch norm fixes
    /// its float32 (scale, shift) now, on the model's device and before a conversion to bf16 rounds its
    /// statistics; with <see cref="Native.KernelOptions.FusedConvolutions"/> the norms that follow a convolution and
    /// precede a ReLU are folded into it, and each head tower's convolution + ReLU layers run as one call each; those
    /// fused weights are stored in <paramref name="dtype"/> (null: as the model is now) and channels-last where asked,
    /// what the model will run in.</summary>
    public void PrepareForInference(ScalarType? dtype = null, bool channelsLast = false)
    {
        foreach (var norm in modules().OfType<FrozenBatchNorm2d>()) norm.CacheAffine();
        DropFusedTowers();
        // the fused calls run on a GPU only: elsewhere their copies of the weights would be memory for nothing
        bool fuse = Kernels.FusedConvolutions && Native.AtenOps.Available
            && parameters().FirstOrDefault()?.device_type == DeviceType.CUDA;
        foreach (var (_, fpn) in BackboneModules)
        {
            fpn.Body.PrepareStem(dtype ?? parameters().First().dtype, channelsLast && fuse);
            fpn.MergeKernel = Kernels.FpnMerge && channelsLast && fuse;
        }
        if (!fuse) return;
        foreach (var (_, fpn) in BackboneModules)
        {
            foreach (var (conv, norm) in fpn.Body.ConvNormPairs) norm.FoldInto(conv, dtype, channelsLast);
            if (!Kernels.FoldedDownsamples) continue;
            foreach (var join in fpn.Body.DownsampleJoins)
                join.LastNorm.JoinDownsample(join.Last, join.Conv, join.Norm, dtype, channelsLast);
        }
        fusedClassTower = FuseTower(classConvs, dtype, channelsLast);
        fusedBoxTower = FuseTower(boxConvs, dtype, channelsLast);
    }

    // every convolution of a head but the last is followed by a ReLU (MakeHead)
    static FusedConvolution[] FuseTower(Conv2d[] convs, ScalarType? dtype, bool channelsLast) =>
        convs.SkipLast(1).Select(conv => new FusedConvolution(conv, null, dtype, channelsLast)).ToArray();

    void DropFusedTowers()
    {
        foreach (var fused in (fusedClassTower ?? []).Concat(fusedBoxTower ?? [])) fused.Dispose();
        fusedClassTower = fusedBoxTower = null;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) DropFusedTowers();
        base.Dispose(disposing);
    }

    /// <summary>Stops gradients to the backbone bodies entirely (FPN and heads still train): a randomly initialised,
    /// calibrated body is a fixed random feature extractor that cannot drift out of its normalisation.</summary>
    public void FreezeBodies()
    {
        foreach (var (_, fpn) in BackboneModules)
            foreach (var p in fpn.Body.parameters()) p.requires_grad = false;
    }

    /// <summary>Stops gradients to every backbone's stem (see <see cref="FeatureBody.Stem"/>).</summary>
    public void FreezeStems()
    {
        foreach (var (_, fpn) in BackboneModules)
            foreach (var module in fpn.Body.Stem)
                foreach (var p in module.parameters()) p.requires_grad = false;
    }

    /// <summary>State-dict prefix of the class output layer, whose shape follows the class count.</summary>
    public string ClassOutputPrefix => $"cls_head.{cls_head.children().Count() - 1}.";

    /// <summary>Module paths of the two output convolutions (class logits, box deltas).</summary>
    public IReadOnlyList<string> OutputConvolutions
        => [ClassOutputPrefix.TrimEnd('.'), $"box_head.{box_head.children().Count() - 1}"];

    /// <summary>Re-initialises only the class output layer (fine-tuning to another class count keeps the rest), from
    /// a generator seeded with <paramref name="seed"/>.</summary>
    public void InitializeClassOutput(long seed)
    {
        using var noGrad = no_grad();
        using var generator = new Generator(unchecked((ulong)seed));
        var last = (Conv2d)cls_head.children().Last();
        FillNormal(last.weight, 0.01, generator);
        using var bias = (-Math.Log((1 - ClassPrior) / ClassPrior)).ToScalar();
        nn.init.constant_(last.bias!, bias);
    }

    // TorchSharp 0.107's nn.init.normal_ drew from the global generator although given another (a model's weights
    // followed torch.manual_seed), and kaiming_normal_/xavier_uniform_ take none; randn and rand honour theirs
    static void FillNormal(Tensor weight, double std, Generator generator)
    {
        using var values = randn(weight.shape, generator: generator);
        using var deviation = std.ToScalar();
        weight.copy_(values.mul_(deviation));
    }

    static void FillUniform(Tensor weight, double bound, Generator generator)
    {
        using var values = rand(weight.shape, generator: generator);
        using Scalar width = (2 * bound).ToScalar(), low = bound.ToScalar();
        weight.copy_(values.mul_(width).sub_(low));
    }

    // torch.nn.init's fans
    static (double In, double Out) Fans(Tensor weight)
    {
        double receptive = weight.shape.Skip(2).Aggregate(1L, (a, b) => a * b);
        return (weight.shape[1] * receptive, weight.shape[0] * receptive);
    }

    static void InitializeHead(Sequential head, Generator generator, double lastBias)
    {
        var convs = head.children().OfType<Conv2d>().ToList();
        foreach (var conv in convs)
        {
            FillNormal(conv.weight, 0.01, generator);
            using var bias = (conv == convs[^1] ? lastBias : 0).ToScalar();
            nn.init.constant_(conv.bias!, bias);
        }
    }

    /// <summary>Pyramid features of all backbones, in order (ODTK extends the list per backbone).</summary>
    public Tensor[] Features(Tensor images)
    {
        if (images.dim() != 4 || images.shape[1] != 3)
            throw new ArgumentException("expected images [batch, 3, height, width], got "
                + $"[{string.Join(", ", images.shape)}]");
        if (images.shape[2] % Stride != 0 || images.shape[3] % Stride != 0)
            throw new ArgumentException($"image height and width must be multiples of {Stride}, got "
                + $"{images.shape[2]}x{images.shape[3]}");
        return BackboneModules.SelectMany(b => b.Backbone.forward(images)).ToArray();
    }

    public override HeadOutputs forward(Tensor images) => Forward(images, deferClassBias: false);

    /// <summary><see cref="forward"/>; with <paramref name="deferClassBias"/>, in a model whose class tower is fused
    /// (<see cref="PrepareForInference"/>), the class head's last convolution runs without its bias and the outputs
    /// carry it (<see cref="HeadOutputs.ClassBias"/>) for decode to add while it copies the logits.</summary>
    public HeadOutputs Forward(Tensor images, bool deferClassBias)
    {
        using var scope = NewDisposeScope();
        var features = Features(images);
        var classBias = deferClassBias && fusedClassTower is not null ? classConvs[^1].bias : null;
        var cls = features.Select(f => Head(cls_head, classConvs, fusedClassTower, f, classBias is not null)
            .MoveToOuterDisposeScope()).ToArray();
        var box = features.Select(f => Head(box_head, boxConvs, fusedBoxTower, f, withoutLastBias: false)
            .MoveToOuterDisposeScope()).ToArray();
        return new HeadOutputs(cls, box, classBias);
    }

    /// <summary>A head on one level; with its tower fused, each convolution + ReLU as one cuDNN call where that can
    /// run (else the convolution, then the ReLU in place), and the last convolution without its bias where
    /// asked.</summary>
    static Tensor Head(Sequential head, Conv2d[] convs, FusedConvolution[]? tower, Tensor x, bool withoutLastBias)
    {
        if (tower is null) return head.forward(x);
        var y = x;
        for (int i = 0; i < convs.Length; i++)
        {
            var next = i < tower.Length ? tower[i].TryRun(y, relu: true, null) ?? ConvRelu(i)
                : withoutLastBias ? nn.functional.conv2d(y, convs[i].weight!, null, convs[i].stride,
                    convs[i].padding, convs[i].dilation)
                : convs[i].call(y);
            if (!ReferenceEquals(y, x)) y.Dispose();
            y = next;
        }
        return y;

        Tensor ConvRelu(int i)
        {
            var z = convs[i].call(y);
            var rectified = z.relu_();
            if (!ReferenceEquals(rectified, z)) rectified.Dispose(); // a second handle would keep z alive
            return z;
        }
    }

    /// <summary>Head outputs per level, as <see cref="forward"/>; a head's nodes are named per level.</summary>
    public (string[] ClassLogits, string[] BoxDeltas) EmitOnnx(IOnnxEmitter g, string input)
    {
        var levels = BackboneModules.SelectMany(b => b.Backbone.EmitOnnx(g, input)).ToArray();
        return (Head(cls_head), Head(box_head));

        string[] Head(Sequential head) => levels.Select((x, level) => head.children().Aggregate(x, (y, layer) =>
            layer is Conv2d conv ? g.Conv(y, conv, level: level) : g.Relu(y, g.PathOf((ReLU)layer, level)))).ToArray();
    }
}

/// <summary>The backbones by ODTK name (state-dict prefix <c>backbones.NAME.</c>). Not TorchSharp's ModuleDict:
/// its two indexers named "Item" break Module.to(device) on TorchSharp 0.107.</summary>
sealed class BackboneSet : nn.Module
{
    public BackboneSet(IEnumerable<string> names) : base("backbones")
    {
        foreach (var name in names) register_module(name, Backbones.Create(name));
    }
}

public static class HeadAnchors
{
    /// <summary>Level anchors matching the heads' level sizes and device, for an input of inputHeight x
    /// inputWidth.</summary>
    public static LevelAnchors For(this AnchorGenerator anchors, long inputHeight, long inputWidth,
        HeadOutputs heads) =>
        anchors.For(inputHeight, inputWidth, heads.ClassLogits.Select(l => (l.shape[2], l.shape[3])).ToList(),
            heads.ClassLogits[0].device);
}
