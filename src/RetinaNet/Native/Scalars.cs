using System.Collections.Concurrent;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Native;

/// <summary>TorchSharp Scalars that stay alive while libtorch reads them. TorchSharp frees a Scalar in its
/// finalizer, and a temporary one (an implicit conversion as in <c>x.mul(2)</c>, or the one TorchSharp makes inside
/// <c>a + b</c>, <c>add(t)</c>, <c>x * 2.0</c>, <c>arange(n)</c>, <c>softplus</c>) is unreachable once its handle is
/// read: a collection on another thread can then free it while the native call still reads it. So constants come from
/// <see cref="Of(long)"/> and <see cref="Of(double)"/> (made once, kept for the process), a computed value is a
/// <c>using</c> local (<c>using var rate = lr.ToScalar();</c>), and the add family goes through
/// <see cref="Plus(Tensor, Tensor)"/>. Architecture/ScalarLifetimeTests reads every method body for a temporary
/// Scalar.</summary>
public static class Scalars
{
    // Constants only: a value computed at run time would grow the table without end, so a run that makes this many
    // is a bug to report, not a table to grow.
    const int MaxConstants = 1024;
    static readonly ConcurrentDictionary<(bool Integral, long Bits), Scalar> constants = new();
    static readonly Lock making = new();

    /// <summary>The integer constant <paramref name="value"/> (an integer tensor stays integer).</summary>
    public static Scalar Of(long value) => Constant((true, value), () => value.ToScalar());

    /// <summary>The floating-point constant <paramref name="value"/>.</summary>
    public static Scalar Of(double value) =>
        Constant((false, BitConverter.DoubleToInt64Bits(value)), () => value.ToScalar());

    static Scalar Constant((bool, long) key, Func<Scalar> make)
    {
        if (constants.TryGetValue(key, out var known)) return known;
        lock (making)
        {
            if (constants.TryGetValue(key, out known)) return known;
            if (constants.Count >= MaxConstants)
                throw new InvalidOperationException(
                    "Scalars.Of is for constants; a computed value is a `using var s = value.ToScalar();` local");
            var made = make();
            constants[key] = made;
            return made;
        }
    }

    /// <summary>a + b (TorchSharp's <c>+</c> and <c>add(b)</c> make a temporary alpha).</summary>
    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, Of(1));

    /// <summary>a += b in place.</summary>
    public static Tensor Plus_(this Tensor a, Tensor b) => a.add_(b, Of(1));

    /// <summary>a + c.</summary>
    public static Tensor Plus(this Tensor a, Scalar c) => a.add(c, Of(1));

    /// <summary>a += c in place.</summary>
    public static Tensor Plus_(this Tensor a, Scalar c) => a.add_(c, Of(1));

    /// <summary>c - a, as in <c>Of(1).Minus(p)</c>.</summary>
    public static Tensor Minus(this Scalar c, Tensor a) => a.neg().add_(c, Of(1));

    /// <summary>0, 1, ..., stop - 1 (TorchSharp's one- and two-argument <c>arange</c> make temporary bounds).</summary>
    public static Tensor Arange(long stop, ScalarType dtype = ScalarType.Int64, Device? device = null) =>
        Arange(0, stop, dtype, device);

    /// <summary>start, start + 1, ..., stop - 1.</summary>
    public static Tensor Arange(long start, long stop, ScalarType dtype = ScalarType.Int64, Device? device = null)
    {
        using Scalar from = start.ToScalar(), to = stop.ToScalar();
        return arange(from, to, Of(1), dtype, device);
    }
}
