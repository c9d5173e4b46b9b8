using System.Numerics;

namespace RetinaNet.Evaluation;

/// <summary>Python's <c>'{:0.3f}'.format(x)</c>: correctly rounded from the exact binary value, ties to even
/// (0.0625 prints 0.062; .NET's "F3" would print 0.063).</summary>
public static class PythonFormat
{
    public static string Fixed3(double x)
    {
        if (double.IsNaN(x)) return "nan";
        if (double.IsInfinity(x)) return x > 0 ? "inf" : "-inf";
        bool negative = double.IsNegative(x);
        long bits = BitConverter.DoubleToInt64Bits(Math.Abs(x));
        int exponent = (int)((bits >> 52) & 0x7FF);
        long mantissa = bits & 0xFFFFFFFFFFFFFL;
        if (exponent == 0) exponent = 1; else mantissa |= 1L << 52;
        exponent -= 1075; // |x| = mantissa * 2^exponent exactly
        BigInteger numerator = new BigInteger(mantissa) * 1000, denominator = BigInteger.One;
        if (exponent >= 0) numerator <<= exponent; else denominator <<= -exponent;
        var quotient = BigInteger.DivRem(numerator, denominator, out var remainder);
        var twice = remainder * 2;
        if (twice > denominator || (twice == denominator && !quotient.IsEven)) quotient += 1;
        string digits = quotient.ToString().PadLeft(4, '0');
        return (negative ? "-" : "") + digits[..^3] + "." + digits[^3..];
    }
}
