namespace RetinaNet.Model;

/// <summary>ODTK's pyramid: every FPN backbone gives P3..P7 (strides 8 to 128) and several backbones' levels are
/// concatenated, so level i of a model (0-based) is P(3 + i % 5).</summary>
public static class PyramidLevels
{
    /// <summary>Levels per backbone: P3..P7.</summary>
    public const int PerBackbone = 5;
    /// <summary>Input height and width must be multiples of this (P7's stride), so each level is exactly half the
    /// size of the one before.</summary>
    public const int InputMultiple = 8 << (PerBackbone - 1);
    /// <summary>The stride in input pixels of level <paramref name="level"/> of a model.</summary>
    public static int StrideOf(int level) => 8 << (level % PerBackbone);
}
