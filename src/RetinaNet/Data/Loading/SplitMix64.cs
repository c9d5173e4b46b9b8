namespace RetinaNet.Data.Loading;

/// <summary>SplitMix64 (Steele, Lea, Flood 2014; Vigna's reference splitmix64.c): a 64-bit state advanced by the
/// golden-ratio increment and finalised by two xor-shift-multiply rounds. Ours, so that orders derived from a seed
/// never change with the .NET runtime (System.Random's algorithm is not part of its contract).</summary>
public struct SplitMix64(ulong state)
{
    ulong state = state;

    public ulong Next()
    {
        state += 0x9E3779B97F4A7C15UL;
        return Mix(state);
    }

    /// <summary>The finaliser alone: a bijective hash of 64 bits, used to derive per-epoch seeds.</summary>
    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, bound) without modulo bias: Lemire's multiply-shift with rejection
    /// (https://arxiv.org/abs/1805.10941).</summary>
    public ulong NextBelow(ulong bound)
    {
        if (bound == 0) throw new ArgumentOutOfRangeException(nameof(bound), "bound must be positive");
        ulong high = Math.BigMul(Next(), bound, out ulong low);
        if (low < bound)
        {
            ulong threshold = (0 - bound) % bound; // 2^64 mod bound
            while (low < threshold) high = Math.BigMul(Next(), bound, out low);
        }
        return high;
    }
}
