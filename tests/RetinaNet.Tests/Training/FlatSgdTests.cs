using RetinaNet.Training;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static RetinaNet.Native.Scalars;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Training;

public class FlatSgdTests
{
    static nn.Module<Tensor, Tensor> SmallModel(int seed)
    {
        torch.manual_seed(seed);
        return nn.Sequential(
            ("conv", nn.Conv2d(2, 3, 3, padding: 1)),
            ("relu", nn.ReLU()),
            ("flat", nn.Flatten()),
            ("fc", nn.Linear(3 * 4 * 4, 5)));
    }

    static void CopyWeights(nn.Module from, nn.Module to)
    {
        using var noGrad = no_grad();
        var source = from.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in to.named_parameters()) p.copy_(source[name]);
    }

    static Tensor Loss(nn.Module<Tensor, Tensor> model, int step, Device device)
    {
        using var scope = NewDisposeScope();
        using var scale = (0.07 + 0.01 * step).ToScalar();
        var x = (Arange(2 * 2 * 4 * 4, float32).reshape(2, 2, 4, 4) * scale).sin().to(device);
        var y = model.forward(x);
        return (y.pow(Of(2)).sum() * Of(0.1)).Plus(y.sum()).MoveToOuterDisposeScope();
    }

    static void AssertSameWeights(nn.Module expected, nn.Module actual, double tol, string when)
    {
        var exp = expected.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in actual.named_parameters())
        {
            double err = (p - exp[name]).abs().max().cpu().item<float>();
            Assert.True(err <= tol, $"{when}: {name} differs from torch.optim.SGD by {err:E3}");
        }
    }

    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && (a == b).all().item<bool>();

    static readonly double[] Rates = [0.01, 0.02, 0.005, 0.01, 0.03];

    void MatchesTorchSgd(Device device, bool channelsLast = false)
    {
        using var scope = NewDisposeScope();
        var model = SmallModel(1).to(device);
        var reference = SmallModel(2).to(device);
        CopyWeights(model, reference);
        using var refSgd = torch.optim.SGD(reference.parameters(), 0.01, momentum: 0.9, weight_decay: 1e-2);
        using var sgd = new FlatSgd(model.named_parameters(), momentum: 0.9, weightDecay: 1e-2,
            channelsLast: channelsLast);

        // the parameters now live in the flat buffer (4-d ones NHWC-strided when asked)
        Assert.Equal(model.parameters().Sum(p => p.numel()), sgd.FlatParams.numel());
        foreach (var p in model.parameters().Where(p => p.dim() == 4))
            Assert.Equal(channelsLast, p.stride(1) == 1 && p.stride(3) == p.shape[1]);
        for (int step = 0; step < Rates.Length; step++)
        {
            sgd.ZeroGrad();
            Loss(model, step, device).backward();
            refSgd.zero_grad();
            Loss(reference, step, device).backward();
            foreach (var g in refSgd.ParamGroups) g.LearningRate = Rates[step];
            refSgd.step();
            sgd.Step(Rates[step]);
            AssertSameWeights(reference, model, 1e-6, $"step {step + 1} on {device}");
        }
    }

    [Fact]
    public void Matches_torch_optim_SGD_on_cpu() => MatchesTorchSgd(CPU);

    [GpuFact]
    public void Matches_torch_optim_SGD_on_cuda() => MatchesTorchSgd(CUDA);

    [Fact]
    public void Matches_torch_optim_SGD_with_channels_last_weights() => MatchesTorchSgd(CPU, channelsLast: true);

    [Fact]
    public void Hand_computed_steps_on_a_scalar()
    {
        using var scope = NewDisposeScope();
        var p = new Parameter(tensor(new[] { 1.0f }));
        using var sgd = new FlatSgd([("p", p)], momentum: 0.9, weightDecay: 0.1);
        // loss = 0.5 p: g = 0.5. Step 1: d = 0.5 + 0.1 = 0.6, buf = 0.6, p = 1 - 0.1 * 0.6 = 0.94.
        // Step 2: d = 0.5 + 0.094 = 0.594, buf = 0.9 * 0.6 + 0.594 = 1.134, p = 0.94 - 0.1134 = 0.8266.
        double[] expected = [0.94, 0.8266];
        foreach (var e in expected)
        {
            sgd.ZeroGrad();
            (p * Of(0.5)).sum().backward();
            Assert.Equal(0.5f, sgd.FlatGrad[0].item<float>());
            sgd.Step(0.1);
            Assertions.Close(e, p[0].item<float>(), 1e-6, "p");
        }
        var state = sgd.State();
        Assertions.Close(1.134, state["p"][0].item<float>(), 1e-6, "momentum buffer");
    }

    [Fact]
    public void Gradients_are_views_of_the_flat_buffer_and_frozen_parameters_are_left_alone()
    {
        using var scope = NewDisposeScope();
        var model = SmallModel(3);
        var conv = model.named_parameters().First(p => p.name == "conv.weight").parameter;
        conv.requires_grad = false;
        using var frozenBefore = conv.detach().clone();
        using var sgd = new FlatSgd(model.named_parameters());
        Assert.DoesNotContain("conv.weight", sgd.ParameterNames);
        Assert.Equal(model.parameters().Where(p => p.requires_grad).Sum(p => p.numel()), sgd.FlatGrad.numel());

        Loss(model, 0, CPU).backward();
        Loss(model, 1, CPU).backward(); // accumulates
        var concatenated = cat(sgd.ParameterNames.Select(n =>
            model.named_parameters().First(p => p.name == n).parameter.grad!.flatten()).ToArray());
        Assert.True(concatenated.abs().sum().item<float>() > 0);
        Assert.True(Same(concatenated, sgd.FlatGrad), "param.grad views differ from FlatGrad");

        // writing through the flat buffer changes the parameters (they are views)
        sgd.FlatParams.zero_();
        Assert.Equal(0f,
            model.named_parameters().First(p => p.name == "fc.weight").parameter.abs().sum().item<float>());
        sgd.Step(0.1);
        Assert.True(Same(conv, frozenBefore));
        sgd.ZeroGrad();
        Assert.Equal(0f,
            model.named_parameters().First(p => p.name == "fc.bias").parameter.grad!.abs().sum().item<float>());
    }

    [Fact]
    public void State_round_trip_continues_identically()
    {
        using var scope = NewDisposeScope();
        var model = SmallModel(4);
        var resumed = SmallModel(5);
        using var sgd = new FlatSgd(model.named_parameters(), weightDecay: 1e-3);
        Assert.Empty(sgd.State());
        for (int step = 0; step < 3; step++)
        {
            sgd.ZeroGrad();
            Loss(model, step, CPU).backward();
            sgd.Step(Rates[step]);
        }
        // a "checkpoint": weights plus per-parameter momentum, restored into a fresh model and optimizer
        var saved = sgd.State();
        Assert.Equal(model.named_parameters().Select(p => p.name).OrderBy(n => n), saved.Keys.OrderBy(n => n));
        CopyWeights(model, resumed);
        using var resumedSgd = new FlatSgd(resumed.named_parameters(), weightDecay: 1e-3);
        resumedSgd.LoadState(saved);
        for (int step = 3; step < 5; step++)
        {
            foreach (var (m, o) in new[] { (model, sgd), (resumed, resumedSgd) })
            {
                o.ZeroGrad();
                Loss(m, step, CPU).backward();
                o.Step(Rates[step]);
            }
            Assert.True(Same(sgd.FlatParams, resumedSgd.FlatParams), $"step {step + 1}: resumed run diverged");
        }

        var bad = new Dictionary<string, Tensor>(saved);
        bad.Remove("fc.bias");
        Assert.Contains("fc.bias", Assert.Throws<ArgumentException>(() => resumedSgd.LoadState(bad)).Message);
    }
}
