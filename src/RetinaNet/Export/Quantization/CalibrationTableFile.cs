using System.Globalization;
using System.Text;
using RetinaNet.Data;

namespace RetinaNet.Export.Quantization;

/// <summary>TensorRT's calibration cache text format. Checked against what reads and writes it:
/// <list type="bullet">
/// <item>ONNX Runtime's TensorRT provider reads native TensorRT tables in ReadDynamicRange
/// (microsoft/onnxruntime, onnxruntime/core/providers/tensorrt/tensorrt_execution_provider_utils.h): the first line
/// must contain "TRT-"; every further line is split at ':' into the tensor name and a hex number read with
/// strtoul(…, 16) as the IEEE-754 bits of the float32 scale; the dynamic range is scale × 127.</item>
/// <item>A table TensorRT 8.6.1 wrote (ultralytics/ultralytics#14121): header <c>TRT-8601-EntropyCalibration2</c>, then
/// lines such as <c>images: 3b66eddc</c>: the bits as 8 lowercase hex digits, most significant first.</item>
/// <item>The header's number is NV_TENSORRT_VERSION: major·1000 + minor·100 + patch up to TensorRT 8 (8601),
/// major·10000 + minor·100 + patch from TensorRT 10 (NvInferVersion.h's NV_TENSORRT_VERSION_INT).</item>
/// </list>
/// We write TensorRT 10.0.0's header; our QDQ models carry their scales in the graph, so TensorRT itself never needs
/// the table: it is for re-exporting without calibrating again, and for tools that read TensorRT tables. Reading
/// accepts any TRT-&lt;number&gt;-&lt;algorithm&gt; header; a name may itself contain ':' (the hex follows the last
/// one).</summary>
public static class CalibrationTableFile
{
    public const int WrittenVersion = 100000;

    public static string Format(CalibrationTable table)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"TRT-{WrittenVersion}-{table.Algorithm}\n");
        foreach (var (name, scale) in table.Scales)
            text.Append(CultureInfo.InvariantCulture, $"{name}: {BitConverter.SingleToUInt32Bits(scale):x8}\n");
        return text.ToString();
    }

    /// <summary>Writes atomically (a temporary file renamed over the target).</summary>
    public static void Save(CalibrationTable table, string path)
    {
        string temp = path + ".tmp";
        File.WriteAllText(temp, Format(table), new UTF8Encoding(false));
        File.Move(temp, path, overwrite: true);
    }

    public static CalibrationTable Load(string path)
    {
        if (!File.Exists(path)) throw new BadInputException(path,
            "calibration table not found; give an existing table, or --calibration-images to calibrate");
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses a table; errors name <paramref name="source"/> and the line.</summary>
    public static CalibrationTable Parse(string text, string source)
    {
        var lines = text.Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
        string header = lines[0].Trim();
        var headerParts = header.Split('-', 3);
        if (headerParts.Length != 3 || headerParts[0] != "TRT" || !headerParts[1].All(char.IsAsciiDigit)
            || headerParts[1].Length == 0 || headerParts[2].Length == 0)
            throw new BadInputException(source,
                "line 1: expected a TensorRT calibration table header such as TRT-8601-EntropyCalibration2, got "
                + $"'{Shorten(header)}'");
        var scales = new List<KeyValuePair<string, float>>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 1; i < lines.Length; i++)
        {
            string line = lines[i].Trim();
            if (line.Length == 0) continue;
            int colon = line.LastIndexOf(':');
            string name = colon > 0 ? line[..colon].Trim() : "", hex = colon > 0 ? line[(colon + 1)..].Trim() : "";
            if (name.Length == 0 || hex.Length is 0 or > 8
                || !uint.TryParse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out uint bits))
                throw new BadInputException(source,
                    $"line {i + 1}: expected 'tensor name: 8 hex digits of the float32 scale', got '{Shorten(line)}'");
            float scale = BitConverter.UInt32BitsToSingle(bits);
            if (!(scale > 0 && float.IsFinite(scale)))
                throw new BadInputException(source,
                    $"line {i + 1}: the scale of '{name}' is {scale}; scales must be positive: recalibrate to write a "
                    + "new table");
            if (!seen.Add(name)) throw new BadInputException(source, $"line {i + 1}: '{name}' is listed twice");
            scales.Add(KeyValuePair.Create(name, scale));
        }
        return new CalibrationTable(headerParts[2], scales);
    }

    static string Shorten(string s) => s.Length <= 80 ? s : s[..77] + "...";
}
