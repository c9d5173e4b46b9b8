using System.Globalization;
using System.Numerics;

namespace RetinaNet.Core;

/// <summary>Python's float format specs '{:.Nf}' and '{:.Ng}', exactly: the double's exact binary value rounded
/// half-to-even (as CPython), so log lines read as ODTK's.</summary>
public static class PythonFormat
{
    /// <summary>'{:.<paramref name="decimals"/>f}'.format(x), e.g. Fixed(0.0625, 3) = "0.062".</summary>
    public static string Fixed(double x, int decimals)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(decimals);
        if (double.IsNaN(x)) return "nan";
        if (double.IsInfinity(x)) return x > 0 ? "inf" : "-inf";
        string sign = double.IsNegative(x) ? "-" : "";
        var n = Scaled(Math.Abs(x), -decimals, roundHalfEven: true);
        return sign + WithPoint(n, decimals);
    }

    /// <summary>'{:.<paramref name="precision"/>g}'.format(x): <paramref name="precision"/> significant digits
    /// (0 counts as 1); scientific when the rounded exponent is &lt; -4 or &gt;= precision; trailing zeros
    /// removed; exponent at least two digits ("1e-05").</summary>
    public static string General(double x, int precision)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(precision);
        int p = Math.Max(precision, 1);
        if (double.IsNaN(x)) return "nan";
        if (double.IsInfinity(x)) return x > 0 ? "inf" : "-inf";
        string sign = double.IsNegative(x) ? "-" : "";
        double a = Math.Abs(x);
        if (a == 0) return sign + "0";

        var low = BigInteger.Pow(10, p - 1);
        var high = low * 10;
        int k = (int)Math.Floor(Math.Log10(a)) - p + 1;
        while (Scaled(a, k, false) >= high) k++;
        while (Scaled(a, k, false) < low) k--;
        var n = Scaled(a, k, true);
        if (n == high) { n /= 10; k++; }
        int exp10 = k + p - 1;

        if (exp10 >= -4 && exp10 < p) return sign + StripZeros(WithPoint(n, -k));
        string digits = StripZeros(WithPoint(n, p - 1));
        return sign + digits + "e" + (exp10 < 0 ? "-" : "+")
            + Math.Abs(exp10).ToString("00", CultureInfo.InvariantCulture);
    }

    /// <summary>a / 10^k for finite a &gt;= 0, as an integer: rounded half-to-even or floored.</summary>
    static BigInteger Scaled(double a, int k, bool roundHalfEven)
    {
        long bits = BitConverter.DoubleToInt64Bits(a);
        int exponentField = (int)((bits >> 52) & 0x7FF);
        long fraction = bits & 0xF_FFFF_FFFF_FFFFL;
        BigInteger mantissa = exponentField == 0 ? fraction : fraction | (1L << 52);
        int e = exponentField == 0 ? -1074 : exponentField - 1075;
        BigInteger num = mantissa, den = BigInteger.One;
        if (e >= 0) num <<= e; else den <<= -e;
        if (k >= 0) den *= BigInteger.Pow(10, k); else num *= BigInteger.Pow(10, -k);
        var q = BigInteger.DivRem(num, den, out var r);
        if (!roundHalfEven) return q;
        int c = (r * 2).CompareTo(den);
        return c > 0 || (c == 0 && !q.IsEven) ? q + 1 : q;
    }

    static string WithPoint(BigInteger n, int decimals)
    {
        string s = n.ToString(CultureInfo.InvariantCulture);
        if (decimals <= 0) return s;
        s = s.PadLeft(decimals + 1, '0');
        return s[..^decimals] + "." + s[^decimals..];
    }

    static string StripZeros(string s) => s.Contains('.') ? s.TrimEnd('0').TrimEnd('.') : s;
}
