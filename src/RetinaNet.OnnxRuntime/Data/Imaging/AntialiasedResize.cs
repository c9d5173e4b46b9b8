namespace RetinaNet.Data.Imaging;

/// <summary>Bilinear resizing with antialiasing on 8-bit RGB as libtorch's uint8 CPU path does it (which the training
/// and checkpoint inference paths use): PIL's algorithm (a triangle filter widened by the shrink factor, horizontal
/// pass then vertical, rounding to 8 bits between the passes) with 16-bit fixed-point weights, each pass as many
/// fraction bits as its largest weight allows. Hand-written: SkiaSharp's filters are not PIL's, and this assembly
/// has no libtorch.</summary>
public static class AntialiasedResize
{

    public static RgbImage Bilinear(RgbImage image, int width, int height)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"size must be positive, got {width}x{height}");
        var pixels = image.Pixels;
        if (width != image.Width) pixels = Pass(pixels, image.Width, image.Height, width, horizontal: true);
        if (height != image.Height) pixels = Pass(pixels, width, image.Height, height, horizontal: false);
        return new RgbImage(width, height, pixels);
    }

    /// <summary>One separable pass: along rows (<paramref name="horizontal"/>) from <paramref name="width"/> to
    /// <paramref name="size"/> columns, or along columns from <paramref name="height"/> to <paramref name="size"/>
    /// rows.</summary>
    static byte[] Pass(byte[] source, int width, int height, int size, bool horizontal)
    {
        int inSize = horizontal ? width : height;
        var (start, count, weights, k, precision) = Coefficients(inSize, size);
        int outWidth = horizontal ? size : width, outHeight = horizontal ? height : size;
        var result = new byte[outWidth * outHeight * 3];
        // stride between neighbouring input samples along the pass, and between lines across it
        int step = horizontal ? 3 : width * 3;
        for (int o = 0; o < size; o++)
        {
            int lines = horizontal ? height : width;
            for (int line = 0; line < lines; line++)
            {
                int inBase = horizontal ? line * width * 3 : line * 3;
                int outIndex = horizontal ? (line * outWidth + o) * 3 : (o * outWidth + line) * 3;
                for (int c = 0; c < 3; c++)
                {
                    long sum = 1L << (precision - 1);
                    int first = inBase + start[o] * step + c;
                    for (int i = 0; i < count[o]; i++) sum += source[first + i * step] * (long)weights[o * k + i];
                    result[outIndex + c] = (byte)Math.Clamp(sum >> precision, 0, 255);
                }
            }
        }
        return result;
    }

    /// <summary>For each output sample: the first input sample, how many contribute, and their weights (fixed
    /// point with <c>Precision</c> fraction bits, <c>K</c> per output).</summary>
    static (int[] Start, int[] Count, int[] Weights, int K, int Precision) Coefficients(int inSize, int outSize)
    {
        double scale = (double)inSize / outSize, filterScale = Math.Max(scale, 1.0), support = filterScale;
        int k = (int)Math.Ceiling(support) * 2 + 1;
        var start = new int[outSize];
        var count = new int[outSize];
        var normalised = new double[outSize * k];
        double largest = 0;
        for (int o = 0; o < outSize; o++)
        {
            double center = (o + 0.5) * scale;
            int min = Math.Max(0, (int)(center - support + 0.5)), max = Math.Min(inSize, (int)(center + support + 0.5))
                - min;
            double total = 0;
            for (int i = 0; i < max; i++)
                total += normalised[o * k + i] = Math.Max(0, 1 - Math.Abs((i + min - center + 0.5) / filterScale));
            for (int i = 0; i < max; i++)
            {
                if (total != 0) normalised[o * k + i] /= total;
                largest = Math.Max(largest, normalised[o * k + i]);
            }
            (start[o], count[o]) = (min, max);
        }
        // the most fraction bits (at most 22) that keep the largest weight within int16
        int precision = 0;
        while (precision < 22 && (int)(0.5 + largest * (1 << (precision + 1))) < 1 << 15) precision++;
        var weights = normalised.Select(w => (int)(w * (1 << precision) + (w < 0 ? -0.5 : 0.5))).ToArray();
        return (start, count, weights, k, precision);
    }
}
