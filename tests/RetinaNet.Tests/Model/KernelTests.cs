using RetinaNet.Boxes;
using RetinaNet.Inference;
using RetinaNet.Model;
using RetinaNet.Native;
using TorchSharp;
using Xunit;
using static RetinaNet.Native.Scalars;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Model;

/// <summary>Our NVRTC-compiled CUDA kernels against independent references: greedy NMS and sorting written out in
/// plain C#, the focal loss by hand in double precision and its gradient by autograd through the
/// elementwise loss.</summary>
public class KernelTests
{
    [GpuFact]
    public void KernelsCompileAndResolveEveryEntryPoint() =>
        Assert.True(CudaKernels.Available, CudaKernels.MissingReason);

    [Fact]
    public void KernelsSayWhyTheyAreUnavailableWithoutCuda()
    {
        if (cuda.is_available()) return; // the GPU facts cover that case
        Assert.False(CudaKernels.Available);
        Assert.False(string.IsNullOrEmpty(CudaKernels.MissingReason));
    }

    [GpuTheory]
    [InlineData(300, 2000)]  // the limit stops the walk early
    [InlineData(5000, 2000)] // every candidate walked
    [InlineData(100, 130)]   // fewer candidates than a word of 64, twice
    public void NmsKernelKeepsWhatGreedyNmsKeeps(int limit, int k)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(21);
        var xy = rand(3, k, 2, generator: g) * Of(300);
        var boxes = cat([xy, xy.Plus(rand(3, k, 2, generator: g) * Of(80)).Plus(Of(2))], -1);
        var scores = (rand(3, k, generator: g) * Of(50)).floor() / Of(50); // many exact ties
        var classes = randint(0, 4, [3, k], generator: g);
        var valid = rand(3, k, generator: g) > Of(0.1);
        using var result = NmsKernel.Run(scores.cuda(), boxes.cuda(), classes.cuda(), valid.cuda(), 0.5, limit);
        var indices = result.Indices.cpu().data<long>().ToArray();
        var counts = result.Count.cpu().data<long>().ToArray();
        for (int b = 0; b < 3; b++)
        {
            var expected = RetinaNet.Tests.Boxes.NmsTests.BruteForce(scores[b].data<float>().ToArray(),
                boxes[b].contiguous().data<float>().ToArray(), classes[b].data<long>().ToArray(),
                valid[b].data<bool>().ToArray(), 0.5f, limit);
            Assert.True(expected.Count > 10, "the case must keep boxes");
            Assert.Equal(expected.Count, (int)counts[b]);
            Assert.Equal(expected.Select(i => (long)i), indices.Skip(b * limit).Take(expected.Count));
            Assert.All(indices.Skip(b * limit + expected.Count).Take(limit - expected.Count), i => Assert.Equal(-1, i));
        }
    }

    [GpuFact]
    public void NmsKernelRunsInsideACudaGraph()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(4);
        var xy = rand(2, 1500, 2, generator: g) * Of(400);
        var boxes = cat([xy, xy.Plus(rand(2, 1500, 2, generator: g) * Of(60)).Plus(Of(2))], -1).cuda();
        var scores = rand(2, 1500, generator: g).cuda();
        var classes = randint(0, 3, [2, 1500], generator: g).cuda();
        using var graph = CudaGraphs.Capture(0, () =>
        {
            var r = NmsKernel.Run(scores, boxes, classes, null, 0.5, 200);
            return [r.Indices.DetachFromDisposeScope(), r.Count.DetachFromDisposeScope()];
        });
        scores.copy_(rand(2, 1500, generator: g).cuda()); // new scores after the capture: the replay must follow them
        graph.Replay();
        using var eager = BatchedNms.Run(scores, boxes, classes, null, 0.5, 200);
        Assert.True(graph.Outputs[0].equal(eager.Indices).all().item<bool>());
        Assert.True(graph.Outputs[1].equal(eager.Count).all().item<bool>());
    }

    [GpuTheory]
    [InlineData(ScalarType.Float32, 50_000, 1000)]
    [InlineData(ScalarType.BFloat16, 50_000, 1000)]
    [InlineData(ScalarType.Float16, 9_000, 1000)]
    [InlineData(ScalarType.BFloat16, 777, 777)] // k = n
    [InlineData(ScalarType.Float16, 12_345, 300)] // rows off 16-byte boundaries: values read one at a time
    [InlineData(ScalarType.Float32, 4_097, 4_000)] // a second chunk of one value; nearly every value taken
    public void TopKKernelTakesTheLargestValuesTiesByLowerIndex(ScalarType dtype, int n, int k)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(8);
        // quantised values: long runs of exact ties around the k-th value; one row of all-equal values
        var x = ((randn(3, n, generator: g) * Of(4)).round() / Of(4)).to(dtype);
        x[2].fill_(Of(-1.5));
        var (values, indices) = TopKKernel.Run(x.cuda(), k);
        var host = x.to(ScalarType.Float32).data<float>().ToArray();
        var gotValues = values.cpu().data<float>().ToArray();
        var gotIndices = indices.cpu().data<long>().ToArray();
        for (int r = 0; r < 3; r++)
        {
            var expected = Enumerable.Range(0, n).OrderByDescending(i => host[r * n + i]).ThenBy(i => i).Take(k)
                .ToArray();
            Assert.Equal(expected.Select(i => (long)i), gotIndices.Skip(r * k).Take(k));
            Assert.Equal(expected.Select(i => host[r * n + i]), gotValues.Skip(r * k).Take(k));
        }
    }

    /// <summary>The NCHW copy kernel against libtorch's contiguous copy of the same channels-last values: equal bits,
    /// with channel and pixel counts off the 32×32 tiles.</summary>
    [GpuTheory]
    [InlineData(ScalarType.BFloat16, 2, 720, 13, 19)]
    [InlineData(ScalarType.Float16, 3, 36, 5, 7)]
    [InlineData(ScalarType.BFloat16, 1, 8, 2, 3)] // a P7-sized map (1×1 has no layout to tell: decode copies it)
    public void NchwCopyKernelEqualsLibtorchsContiguousCopy(ScalarType dtype, int b, int c, int h, int w)
    {
        using var scope = NewDisposeScope();
        var x = Layouts.NhwcCopy(randn(b, c, h, w, generator: new Generator(9)).to(dtype).cuda());
        var ours = NchwCopyKernel.Run(x);
        Assert.True(ours.is_contiguous());
        Assert.Equal(x.shape, ours.shape);
        var expected = x.contiguous();
        // float32 holds every bf16/fp16 value exactly
        Assert.True(ours.to(ScalarType.Float32).eq(expected.to(ScalarType.Float32)).all().item<bool>(), "same values");
    }

    /// <summary>The NCHW copy adding a bias against libtorch's bf16/fp16 add of the same bias (the convolution's own)
    /// and contiguous copy: equal bits.</summary>
    [GpuTheory]
    [InlineData(ScalarType.BFloat16, 2, 720, 13, 19)]
    [InlineData(ScalarType.Float16, 1, 36, 5, 7)]
    public void NchwCopyWithBiasEqualsLibtorchsAddAndCopy(ScalarType dtype, int b, int c, int h, int w)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(10);
        var x = Layouts.NhwcCopy((randn(b, c, h, w, generator: g) * Of(3)).to(dtype).cuda());
        var bias = (randn(c, generator: g) * Of(5)).to(dtype).cuda();
        var ours = NchwCopyKernel.Run(x, bias);
        var expected = x.Plus(bias.view(1, -1, 1, 1)).contiguous();
        Assert.True(ours.is_contiguous());
        var (a, e) = (ours.to(ScalarType.Float32).cpu(), expected.to(ScalarType.Float32).cpu());
        Assert.True(a.eq(e).all().item<bool>(), $"{a.ne(e).sum().item<long>()} values differ");
    }

    /// <summary>The FPN's one-pass top-down sum against libtorch's bias add, nearest upsampling and add on the same
    /// values: equal bits, for an exact 2× step and for odd sizes (libtorch's nearest index).</summary>
    [GpuTheory]
    [InlineData(ScalarType.BFloat16, 10, 14, 5, 7)]
    [InlineData(ScalarType.BFloat16, 9, 13, 5, 7)]
    [InlineData(ScalarType.Float16, 8, 6, 4, 3)]
    public void FpnMergeKernelEqualsLibtorchsTopDownSum(ScalarType dtype, int h, int w, int ch, int cw)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(12);
        var lateral = Layouts.NhwcCopy((randn(2, 24, h, w, generator: g) * Of(4)).to(dtype).cuda());
        var coarse = Layouts.NhwcCopy((randn(2, 24, ch, cw, generator: g) * Of(4)).to(dtype).cuda());
        var bias = randn(24, generator: g).to(dtype).cuda();
        var expected = lateral.Plus(bias.view(1, -1, 1, 1)).Plus_(nn.functional.interpolate(coarse, size: [h, w],
            mode: InterpolationMode.Nearest));
        var ours = FpnMergeKernel.RunInPlace(Layouts.NhwcCopy(lateral), bias, coarse);
        var (a, e) = (ours.to(ScalarType.Float32).cpu(), expected.to(ScalarType.Float32).cpu());
        Assert.True(a.eq(e).all().item<bool>(), $"{a.ne(e).sum().item<long>()} values differ");
    }

    /// <summary>Decode of channels-last head outputs read where they lie gives the candidates of the same outputs
    /// copied to NCHW, exactly (boxes gathered from the channels-last box values too).</summary>
    [GpuFact]
    public void DecodeOfChannelsLastHeadsReadInPlaceEqualsTheCopiedOnes()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(31);
        const int classes = 8, anchors = 9;
        long[][] sizes = [[24, 40], [12, 20], [6, 10]];
        var cls = sizes.Select(s => ((randn(2, anchors * classes, s[0], s[1], generator: g) * Of(3)).round() / Of(3))
            .to(ScalarType.BFloat16).cuda()).ToArray();
        var box = sizes.Select(s => (randn(2, anchors * 4, s[0], s[1], generator: g) * Of(0.2))
            .to(ScalarType.BFloat16).cuda()).ToArray();
        using var generator = new RetinaNet.Boxes.AnchorGenerator(new RetinaNet.Boxes.AnchorConfig());
        var anchorSet = generator.For(192, 320, sizes.Select(s => (s[0], s[1])).ToArray(), cls[0].device);
        var config = new InferenceConfig { ScoreThreshold = 0.05, TopN = 500 };
        using var copied = Postprocess.Decode(new HeadOutputs(cls, box), anchorSet, classes, config, (320, 192),
            KernelOptions.Default with { ChannelsLastDecode = false });
        using var inPlace = Postprocess.Decode(new HeadOutputs(cls.Select(Layouts.NhwcCopy).ToArray(),
            box.Select(Layouts.NhwcCopy).ToArray()), anchorSet, classes, config, (320, 192),
            KernelOptions.Default with { ChannelsLastDecode = true });
        Assert.True(copied.Scores.eq(inPlace.Scores).all().item<bool>(), "scores");
        Assert.True(copied.Classes.eq(inPlace.Classes).all().item<bool>(), "classes");
        Assert.True(copied.Boxes.eq(inPlace.Boxes).all().item<bool>(), "boxes");
        Assert.True(copied.Valid.eq(inPlace.Valid).all().item<bool>(), "valid");
    }

    static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    [GpuTheory]
    [InlineData(ScalarType.Float32, false)]
    [InlineData(ScalarType.Float32, true)]
    [InlineData(ScalarType.BFloat16, true)]
    public void FusedFocalLossEqualsTheFocalLossAndItsGradient(ScalarType dtype, bool nhwc)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(13);
        const int classes = 5, anchors = 9;
        long[][] sizes = [[6, 7], [3, 4]];
        var levels = sizes.Select(s => (randn(2, anchors * classes, s[0], s[1], generator: g) * Of(3)).to(dtype))
            .ToArray();
        long n = sizes.Sum(s => anchors * s[0] * s[1]);
        var labels = randint(-2, classes + 1, [2, n], generator: g); // -2, -1 ignored, 0 background, c + 1 class c
        var onGpu = levels.Select(l => (nhwc ? Layouts.NhwcCopy(l.cuda()) : l.cuda()).requires_grad_()).ToArray();
        var loss = FocalLossKernel.Sum(onGpu, labels.cuda(), classes);
        loss.backward();

        // value: by hand in double precision, element by element
        double expected = 0;
        var lab = labels.data<long>().ToArray();
        foreach (var e in HeadLevelElements.Of(levels, anchors, classes))
        {
            long label = lab[e.Anchor];
            if (label < 0) continue;
            double p = Sigmoid(e.Value);
            expected += label == e.K + 1 ? -0.25 * (1 - p) * (1 - p) * Math.Log(p) : -0.75 * p * p * Math.Log(1 - p);
        }
        Assertions.Close(expected, loss.item<float>(), 2e-5 * Math.Abs(expected), "loss sum");

        // gradient: autograd through the elementwise focal loss on one-hot targets
        var refLevels = levels.Select(l => l.to(ScalarType.Float32).requires_grad_()).ToArray();
        var perAnchor = HeadLevelElements.PerAnchor(refLevels, anchors, classes);
        var oneHot = zeros_like(perAnchor).scatter_(2, (labels - Of(1)).clamp_min(Of(0)).unsqueeze(-1),
            (labels > Of(0)).unsqueeze(-1).to(ScalarType.Float32));
        Losses.Focal(perAnchor, oneHot).masked_fill((labels < Of(0)).unsqueeze(-1), Of(0)).sum().backward();
        double tolerance = dtype == ScalarType.BFloat16 ? 1e-2 : 1e-5;
        for (int i = 0; i < levels.Length; i++)
        {
            var ours = onGpu[i].grad!.cpu().to(ScalarType.Float32);
            var reference = refLevels[i].grad!;
            var error = ((ours - reference).abs() / reference.abs().Plus(Of(1e-3))).max().item<float>();
            Assert.True(error < tolerance, $"level {i}: largest relative gradient error {error}");
        }
    }

    [GpuTheory]
    [InlineData(ScalarType.BFloat16, true, true)]   // 8 channels per load
    [InlineData(ScalarType.BFloat16, true, false)]
    [InlineData(ScalarType.Float16, true, true)]
    [InlineData(ScalarType.Float32, true, true)]    // one element per thread, NHWC
    [InlineData(ScalarType.Float32, false, true)]   // NCHW
    [InlineData(ScalarType.BFloat16, false, false)]
    public void AffineReluKernelNormalisesAddsAndRectifiesInPlace(ScalarType dtype, bool nhwc, bool withResidual)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(17);
        var x = randn(2, 24, 5, 7, generator: g).to(dtype);
        var residual = randn(2, 24, 5, 7, generator: g).to(dtype);
        var scale = rand(24, generator: g) * Of(2) - Of(0.5);
        var shift = randn(24, generator: g);
        // reference in float32 on the CPU, rounded once to the dtype
        var expected = (x.to(ScalarType.Float32) * scale.view(1, -1, 1, 1)).Plus(shift.view(1, -1, 1, 1));
        if (withResidual) expected = expected.Plus(residual.to(ScalarType.Float32));
        expected = expected.clamp_min(Of(0)).to(dtype).to(ScalarType.Float32);
        var onGpu = nhwc ? Layouts.NhwcCopy(x.cuda()) : x.cuda();
        var r = withResidual ? (nhwc ? Layouts.NhwcCopy(residual.cuda()) : residual.cuda()) : null;
        Assert.True(AffineReluKernel.CanRun(onGpu, r), "the kernel must take this case");
        var result = AffineReluKernel.Apply(onGpu, scale.cuda(), shift.cuda(), r, relu: true);
        Assert.Equal(TensorMemory.DataPointer(onGpu), TensorMemory.DataPointer(result)); // in place
        var got = result.cpu().to(ScalarType.Float32);
        // one rounding step of the dtype apart at most (the reference rounds the same float32 value)
        double ulp = dtype == ScalarType.BFloat16 ? 1.0 / 128 : dtype == ScalarType.Float16 ? 1.0 / 1024 : 1e-6;
        var error = ((got - expected).abs() / expected.abs().Plus(Of(1e-3))).max().item<float>();
        Assert.True(error <= ulp, $"largest relative error {error}");
        Assert.True((got == Of(0)).any().item<bool>() && (got > Of(0)).any().item<bool>(),
            "the case must rectify some values");
    }

    [GpuFact]
    public void ResNetInferenceWithTheFusedNormEqualsLibtorchPasses()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(2);
        var (model, libtorch) = ModelAndLibtorchTwin(
            new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 3 },
            KernelOptions.Default with { FusedConvolutions = false });
        using var _ = model; using var __ = libtorch;
        var images = randn(2, 3, 128, 256).cuda();
        using var noGrad = no_grad();
        var reference = libtorch.Features(images);
        model.PrepareForInference();
        var fused = model.Features(images);
        for (int i = 0; i < fused.Length; i++)
        {
            var error = RelativeError(fused[i], reference[i]);
            // TF32 convolutions: one rounding apart feeds on
            Assert.True(error < 5e-3, $"level {i}: relative error {error}");
        }
    }

    // the largest difference relative to the largest expected magnitude, in float32 whatever the tensors' dtype
    static float RelativeError(Tensor got, Tensor expected)
    {
        using var scope = NewDisposeScope();
        var (g, e) = (got.to(ScalarType.Float32), expected.to(ScalarType.Float32));
        return ((g - e).abs().max() / e.abs().max()).item<float>();
    }

    /// <summary>A CUDA model with <paramref name="kernels"/>, frozen statistics away from identity, and its twin with
    /// the same weights computing every norm with libtorch's passes.</summary>
    static (RetinaNetModel Model, RetinaNetModel Libtorch) ModelAndLibtorchTwin(DetectorConfig config,
        KernelOptions kernels)
    {
        var model = new RetinaNetModel(config, kernels);
        model.Initialize(2);
        foreach (var norm in model.modules().OfType<FrozenBatchNorm2d>())
            using (no_grad())
                foreach (var (name, buffer) in norm.named_buffers())
                    if (name is "running_var" or "weight") buffer.uniform_(0.5, 2);
                    else if (name is "running_mean" or "bias") buffer.uniform_(-0.5, 0.5);
        model.to(CUDA).eval();
        var libtorch = new RetinaNetModel(config,
            KernelOptions.Default with { AffineRelu = false, FusedConvolutions = false });
        libtorch.to(CUDA).eval();
        StateDict.Load(libtorch, StateDict.Of(model), "the model with our kernels");
        return (model, libtorch);
    }

    /// <summary><see cref="KernelOptions.FusedConvolutions"/>: the backbone's features with every norm folded into
    /// its convolution and cuDNN's fused calls, against libtorch's separate passes on the same weights, in float32
    /// and in bf16 channels-last as `infer` runs; then the heads' outputs, their towers' conv + ReLU fused too (in
    /// bf16 against float32, beside libtorch's bf16 passes). A forward hook on the convolutions shows the fused calls
    /// ran (they bypass the modules).</summary>
    [GpuTheory]
    [InlineData("ResNet18FPN", false, false)]
    [InlineData("ResNet50FPN", false, false)]
    [InlineData("ResNet50FPN", true, false)]
    [InlineData("ResNet50FPN", true, true)]
    public void FusedConvolutionsGiveLibtorchsFeatures(string backbone, bool bf16, bool foldedDownsamples)
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(2);
        var (model, libtorch) = ModelAndLibtorchTwin(new DetectorConfig { Backbones = [backbone], Classes = 3 },
            KernelOptions.Default with { FusedConvolutions = true, FoldedDownsamples = foldedDownsamples });
        using var _ = model; using var __ = libtorch;
        var images = randn(2, 3, 128, 256).cuda();
        model.PrepareForInference(bf16 ? ScalarType.BFloat16 : null, channelsLast: bf16);
        HeadOutputs? exact = null; // bf16: both paths are judged by their distance to libtorch's float32 heads
        if (bf16)
        {
            using (no_grad()) exact = libtorch.forward(images);
            model.to(ScalarType.BFloat16); Layouts.ToChannelsLast(model);
            libtorch.to(ScalarType.BFloat16); Layouts.ToChannelsLast(libtorch);
            images = Layouts.NhwcCopy(images.to(ScalarType.BFloat16));
        }
        int convCalls = 0;
        var bodyConvs = model.BackboneModules.SelectMany(b => b.Backbone.Body.modules())
            .OfType<TorchSharp.Modules.Conv2d>().ToList();
        var hooks = bodyConvs.Select(c => c.register_forward_hook((_, _, y) => { convCalls++; return y; })).ToList();
        using var noGrad = no_grad();
        var reference = libtorch.Features(images);
        var fused = model.Features(images);
        foreach (var h in hooks) h.remove();
        int pairs = model.BackboneModules.Sum(b => b.Backbone.Body.ConvNormPairs.Count());
        Assert.True(pairs > 0);
        int downsamples = model.BackboneModules.Sum(b => b.Backbone.Body.DownsampleJoins.Count());
        // the stem ran as a module unless packed into 2×2 blocks (bf16 channels-last), and the downsamples where they
        // were not folded: the rest ran fused
        Assert.Equal((bf16 ? 0 : 1) + (foldedDownsamples ? 0 : downsamples), convCalls);
        Assert.Equal(bodyConvs.Count, 1 + pairs + downsamples);
        for (int i = 0; i < fused.Length; i++)
        {
            var error = RelativeError(fused[i], reference[i]);
            // float32: TF32 convolutions one rounding apart; bf16: roundings of a deep network, as the fused norm's
            Assert.True(error < (bf16 ? 5e-2 : 5e-3), $"level {i}: relative error {error}");
        }
        // the heads: each tower's conv + ReLU layers fused, only its last convolution a module call per level
        int headCalls = 0;
        var headHooks = model.named_modules().Where(m => m.name.StartsWith("cls_head") || m.name.StartsWith("box_head"))
            .Select(m => m.module).OfType<TorchSharp.Modules.Conv2d>()
            .Select(c => c.register_forward_hook((_, _, y) => { headCalls++; return y; })).ToList();
        using var heads = model.forward(images);
        foreach (var h in headHooks) h.remove();
        Assert.Equal(2 * fused.Length, headCalls);
        using var referenceHeads = libtorch.forward(images);
        using var __exact = exact;
        Tensor[] All(HeadOutputs h) => h.ClassLogits.Concat(h.BoxDeltas).ToArray();
        var (outputs, expected) = (All(heads), All(referenceHeads));
        var float32 = exact is null ? null : All(exact);
        for (int i = 0; i < outputs.Length; i++)
        {
            if (float32 is null)
            {
                var error = RelativeError(outputs[i], expected[i]);
                Assert.True(error < 5e-3, $"head output {i}: relative error {error}");
                continue;
            }
            // five bf16 layers on features already a few % apart: each path's own rounding, so the fused one must
            // come as close to float32 as libtorch's bf16 passes do
            var (ours, theirs) = (RelativeError(outputs[i], float32[i]), RelativeError(expected[i], float32[i]));
            Assert.True(ours <= 2 * theirs + 2e-3, $"head output {i}: {ours} from float32, libtorch's bf16 {theirs}");
        }
    }

    /// <summary>The max-pool kernel against libtorch's max_pool2d on the same NHWC input: exactly the same values
    /// (a max is exact), at the image border (the padding skipped) and where a window holds a NaN or only
    /// -inf.</summary>
    [GpuTheory]
    [InlineData(ScalarType.BFloat16, 3, 2, 1, 17, 30)] // the stem's pooling, odd sizes
    [InlineData(ScalarType.Float16, 3, 2, 1, 8, 9)]
    [InlineData(ScalarType.BFloat16, 2, 2, 0, 12, 7)]
    [InlineData(ScalarType.BFloat16, 3, 1, 1, 5, 6)]
    public void MaxPoolKernelEqualsLibtorchsMaxPool(ScalarType dtype, int kernel, int stride, int padding, int h, int w)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(23);
        var x = randn(3, 24, h, w, generator: g);
        x[0, 3, 1, 2] = tensor(float.NaN);
        x[1, 5, 0, 0] = tensor(float.NegativeInfinity);
        x[2, 8] = tensor(float.NegativeInfinity); // whole windows of -inf
        var input = Layouts.NhwcCopy(x.to(dtype).cuda());
        var ours = MaxPoolKernel.Run(input, kernel, stride, padding);
        var expected = nn.functional.max_pool2d(input, kernel, stride, padding);
        Assert.Equal(expected.shape, ours.shape);
        Assert.True(Layouts.IsDenseNhwc(ours));
        var a = ours.to(ScalarType.Float32).cpu().contiguous();
        var b = expected.to(ScalarType.Float32).cpu().contiguous();
        Assert.True(a.isnan().eq(b.isnan()).all().item<bool>(), "NaN where libtorch's pooling has NaN");
        Assert.True(a.nan_to_num(0).eq(b.nan_to_num(0)).all().item<bool>(), "the values equal libtorch's");
        Assert.True(b.isnan().any().item<bool>() && b.isinf().any().item<bool>(), "the test has its NaN and -inf");
    }

    [GpuTheory]
    [InlineData(ScalarType.Float32, true, true)]
    [InlineData(ScalarType.Float32, false, false)]
    [InlineData(ScalarType.BFloat16, true, true)]
    public void FrozenNormReluNodeGivesLibtorchsGradients(ScalarType dtype, bool nhwc, bool relu)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(19);
        Tensor Make()
        {
            var t = randn(2, 16, 6, 10, generator: g).to(dtype).cuda(); return (nhwc ? Layouts.NhwcCopy(t) : t);
        }
        var x = Make().requires_grad_(); var residual = Make().requires_grad_();
        var scale = (rand(16, generator: g) * Of(2) - Of(0.5)).cuda(); var shift = randn(16, generator: g).cuda();
        var upstream = Make();
        var y = FrozenNormReluFunction.Apply(x, scale, shift, residual, relu);
        (y.to(ScalarType.Float32) * upstream.to(ScalarType.Float32)).sum().backward();

        // reference: the same function as libtorch ops in float32, differentiated by autograd
        var xr = x.detach().to(ScalarType.Float32).requires_grad_();
        var rr = residual.detach().to(ScalarType.Float32).requires_grad_();
        var yr = (xr * scale.view(1, -1, 1, 1)).Plus(shift.view(1, -1, 1, 1)).Plus(rr);
        if (relu) yr = yr.relu();
        (yr * upstream.to(ScalarType.Float32)).sum().backward();
        double tolerance = dtype == ScalarType.BFloat16 ? 1.0 / 128 : 1e-6;
        void Close(Tensor ours, Tensor reference, string what)
        {
            var error = ((ours.to(ScalarType.Float32) - reference).abs() / reference.abs().Plus(Of(1e-3))).max()
                .item<float>();
            Assert.True(error <= tolerance, $"{what}: largest relative error {error}");
        }
        Close(y.detach(), yr.detach(), "output");
        Close(x.grad!, xr.grad!, "gradient into x");
        Close(residual.grad!, rr.grad!, "gradient into the residual");
        if (relu) Assert.True((x.grad! == Of(0)).any().item<bool>(), "the case must mask some gradients");
    }

    [GpuFact]
    public void TrainingStepWithTheFusedNormEqualsLibtorchPasses()
    {
        using var scope = NewDisposeScope();
        var targets = tensor(new float[] { 10, 10, 50, 60, 1, 100, 100, 40, 40, 2 }, [2, 1, 5]);
        (float Loss, Dictionary<string, Tensor> Grads) Step(bool kernel)
        {
            torch.manual_seed(5);
            var kernels = KernelOptions.Default with { AffineReluInTraining = kernel };
            var (model, loss) = TrainingLoss.Once(CUDA, 256, 256, targets, kernels);
            using var _ = model;
            loss.backward();
            return (loss.item<float>(), model.named_parameters().Where(p => p.parameter.grad is not null)
                .ToDictionary(p => p.name, p => p.parameter.grad!.detach().clone()));
        }
        var fused = Step(true);
        var reference = Step(false);
        Assertions.Close(reference.Loss, fused.Loss, 1e-3 * Math.Abs(reference.Loss), "loss");
        Assert.Equal(reference.Grads.Keys.Order(), fused.Grads.Keys.Order());
        foreach (var (name, grad) in reference.Grads)
        {
            var error = ((fused.Grads[name] - grad).norm() / grad.norm().Plus(Of(1e-12))).item<float>();
            Assert.True(error < 1e-2, $"{name}: relative gradient error {error}"); // TF32 convolutions
        }
    }
}
