using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RetinaNet.Export.Quantization;

/// <summary>Collects the range of each convolution's input while a model runs: a forward pre-hook per Conv2d, keyed
/// by the convolution's module path (its state-dict prefix without ".weight", the name its Conv node has in the
/// exported graph). The hooks only queue device work; <see cref="Table"/> reads the results back once.</summary>
public sealed class ConvolutionInputObserver : IDisposable
{
    readonly OrderedDictionary<string, IRangeCollector> collectors = new(StringComparer.Ordinal);
    readonly List<Action> unhook = [];

    /// <param name="skip">Convolutions that stay in float (their inputs are not quantized).</param>
    public ConvolutionInputObserver(nn.Module model, Func<IRangeCollector> newCollector, IReadOnlySet<string> skip)
    {
        try
        {
            foreach (var (name, module) in model.named_modules())
            {
                if (module is not Conv2d conv || skip.Contains(name)) continue;
                var collector = newCollector();
                collectors.Add(name, collector);
                var hook = conv.register_forward_pre_hook((_, input) => { collector.Observe(input); return input; });
                unhook.Add(hook.remove);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public IEnumerable<string> Names => collectors.Keys;

    /// <summary>amax per observed convolution, in the model's module order.</summary>
    public IEnumerable<KeyValuePair<string, double>> Ranges()
    {
        foreach (var (name, collector) in collectors)
        {
            double amax;
            try { amax = collector.Amax(); }
            catch (InvalidOperationException) { throw new InvalidOperationException("calibration never reached "
                + $"convolution {name}"); }
            catch (InvalidDataException e) { throw new InvalidDataException($"INT8 calibration: convolution {name}: "
                + $"{e.Message}"); }
            yield return KeyValuePair.Create(name, amax);
        }
    }

    public CalibrationTable Table(CalibrationMethod method) => CalibrationTable.FromRanges(method, Ranges().ToList());

    public void Dispose()
    {
        foreach (var remove in unhook) remove();
        unhook.Clear();
        foreach (var collector in collectors.Values) collector.Dispose();
        collectors.Clear();
    }
}
