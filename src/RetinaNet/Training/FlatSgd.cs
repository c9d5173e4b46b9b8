using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RetinaNet.Training;

/// <summary>SGD with momentum and L2 weight decay, the same update as torch.optim.SGD (dampening 0, no Nesterov):
/// d = g + weight_decay * p; buf = momentum * buf + d (on the first step buf = d); p -= lr * buf.
/// <para>All trainable parameters (requires_grad) are re-pointed (<c>set_</c>) into views of one flat contiguous
/// buffer, and their gradients are views of one flat gradient buffer that backward accumulates into, so a step is a
/// few kernels over the whole buffer rather than a loop over parameters.</para>
/// <para>Construct it after the model is on its final device and dtype (a later <c>Module.to</c> replaces the
/// parameters' storage and detaches them from the buffer). Clear gradients with <see cref="ZeroGrad"/>, not the
/// module's zero_grad (setting gradients to none would drop the views). All trainable parameters must share one
/// dtype and device.</para></summary>
public sealed class FlatSgd : IDisposable
{
    readonly (string Name, long Offset, long[] Shape)[] layout;
    readonly Tensor flatParams, flatGrad, momentumBuffer;
    readonly bool channelsLast;
    bool hasMomentum;

    public double Momentum { get; }
    public double WeightDecay { get; }

    /// <param name="parameters">Usually <c>model.named_parameters()</c>; those without requires_grad are left
    /// alone.</param> <param name="channelsLast">4-d parameters (and their gradients) become NHWC-strided views of the
    /// buffers.</param>
    public FlatSgd(IEnumerable<(string Name, Parameter P)> parameters, double momentum = 0.9,
        double weightDecay = 0.0001, bool channelsLast = false)
    {
        this.channelsLast = channelsLast;
        if (momentum < 0) throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "momentum must be >= 0");
        if (weightDecay < 0) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay,
            "weight decay must be >= 0");
        Momentum = momentum;
        WeightDecay = weightDecay;

        var trainable = parameters.Where(p => p.P.requires_grad).ToArray();
        if (trainable.Length == 0) throw new ArgumentException("no trainable parameters (none has requires_grad)",
            nameof(parameters));
        var dtype = trainable[0].P.dtype;
        var device = trainable[0].P.device;
        var names = new HashSet<string>();
        foreach (var (name, p) in trainable)
        {
            if (!names.Add(name)) throw new ArgumentException($"parameter name '{name}' appears twice",
                nameof(parameters));
            if (p.dtype != dtype || p.device.type != device.type || p.device.index != device.index)
                throw new ArgumentException($"parameter '{name}' is {p.dtype} on {p.device}, the first is {dtype} on "
                    + $"{device}: all trainable parameters must share one dtype and device", nameof(parameters));
        }

        layout = new (string, long, long[])[trainable.Length];
        long total = 0;
        for (int i = 0; i < trainable.Length; i++)
        {
            layout[i] = (trainable[i].Name, total, trainable[i].P.shape);
            total += trainable[i].P.numel();
        }

        flatParams = zeros(total, dtype, device);
        flatGrad = zeros(total, dtype, device);
        momentumBuffer = zeros(total, dtype, device);
        using (no_grad())
        {
            for (int i = 0; i < trainable.Length; i++)
            {
                var p = trainable[i].P;
                using var view = ViewOf(flatParams, i);
                view.copy_(p);
                var replaced = p.set_(view);
                if (!ReferenceEquals(replaced, p)) replaced.Dispose(); // TorchSharp may return the parameter itself
                using var gradView = ViewOf(flatGrad, i);
                p.grad = gradView;
            }
        }
    }

    /// <summary>The trainable parameters' values, one flat buffer (parameters are views of it).</summary>
    public Tensor FlatParams => flatParams;

    /// <summary>The gradients, one flat buffer (each parameter's grad is a view of it): for NaN checks, unscaling
    /// and all-reduce.</summary>
    public Tensor FlatGrad => flatGrad;

    /// <summary>The momentum buffer (meaningful once <see cref="HasMomentum"/>): a multi-process job copies rank 0's
    /// to every rank at the start.</summary>
    internal Tensor FlatMomentum => momentumBuffer;

    /// <summary>Whether a step has filled the momentum buffer (before that, the first step copies the gradient
    /// in).</summary>
    internal bool HasMomentum { get => hasMomentum; set => hasMomentum = value; }

    /// <summary>Names of the parameters in the buffer, in buffer order.</summary>
    public IReadOnlyList<string> ParameterNames => layout.Select(l => l.Name).ToArray();

    /// <summary>One SGD step with learning rate <paramref name="lr"/> over the whole buffer.</summary>
    public void Step(double lr)
    {
        using var noGrad = no_grad();
        using Scalar descent = (-lr).ToScalar(), decay = WeightDecay.ToScalar();
        if (Momentum == 0)
        {
            using var shrink = (1 - lr * WeightDecay).ToScalar();
            if (WeightDecay != 0) flatParams.mul_(shrink);
            flatParams.add_(flatGrad, alpha: descent);
            return;
        }
        using var momentum = Momentum.ToScalar();
        if (hasMomentum) momentumBuffer.mul_(momentum).Plus_(flatGrad);
        else momentumBuffer.copy_(flatGrad);
        if (WeightDecay != 0) momentumBuffer.add_(flatParams, alpha: decay);
        hasMomentum = true;
        flatParams.add_(momentumBuffer, alpha: descent);
    }

    /// <summary>Zeroes the flat gradient buffer (one kernel); the parameters' grad views stay in place.</summary>
    public void ZeroGrad()
    {
        using var noGrad = no_grad();
        flatGrad.zero_();
    }

    /// <summary>Per-parameter momentum buffers keyed by parameter name, as torch's per-parameter
    /// state['momentum_buffer']: copies, on the buffer's device. Empty before the first step (as torch).</summary>
    public Dictionary<string, Tensor> State()
    {
        var state = new Dictionary<string, Tensor>();
        if (!hasMomentum) return state;
        for (int i = 0; i < layout.Length; i++)
        {
            using var view = ViewOf(momentumBuffer, i);
            state[layout[i].Name] = view.contiguous().clone();
        }
        return state;
    }

    /// <summary>Restores momentum buffers saved by <see cref="State"/> (or torch's per-parameter momentum_buffer,
    /// keyed by name). An empty dictionary resets to "no step taken yet"; otherwise every parameter must be present
    /// with its shape. Values are copied (converted to the buffer's dtype and device).</summary>
    public void LoadState(IReadOnlyDictionary<string, Tensor> state)
    {
        if (state.Count == 0) { hasMomentum = false; return; }
        var known = layout.Select(l => l.Name).ToHashSet();
        var extra = state.Keys.Where(k => !known.Contains(k)).ToArray();
        if (extra.Length > 0) throw new ArgumentException("optimizer state names unknown parameters: "
            + $"{string.Join(", ", extra.Take(5))}", nameof(state));
        using var noGrad = no_grad();
        for (int i = 0; i < layout.Length; i++)
        {
            var (name, _, shape) = layout[i];
            if (!state.TryGetValue(name, out var saved)) throw new ArgumentException("optimizer state lacks the "
                + $"momentum buffer of '{name}'", nameof(state));
            if (!saved.shape.SequenceEqual(shape))
                throw new ArgumentException($"momentum buffer of '{name}' has shape "
                    + $"[{string.Join(", ", saved.shape)}], the parameter [{string.Join(", ", shape)}]", nameof(state));
        }
        for (int i = 0; i < layout.Length; i++)
        {
            using var view = ViewOf(momentumBuffer, i);
            view.copy_(state[layout[i].Name]);
        }
        hasMomentum = true;
    }

    Tensor ViewOf(Tensor flat, int i)
    {
        var (_, offset, shape) = layout[i];
        long n = shape.Aggregate(1L, (a, b) => a * b);
        using var slice = flat.narrow(0, offset, n);
        if (!channelsLast || shape.Length != 4) return slice.view(shape);
        using var nhwc = slice.view(shape[0], shape[2], shape[3], shape[1]);
        return nhwc.permute(0, 3, 1, 2);
    }

    public void Dispose()
    {
        flatParams.Dispose();
        flatGrad.Dispose();
        momentumBuffer.Dispose();
    }
}
