using RetinaNet.Data;
using RetinaNet.Export.Quantization;
using Xunit;

namespace RetinaNet.Tests.Export;

public class CalibrationTableTests
{
    // The head of a table TensorRT 8.6.1 wrote for a YOLOv8 ONNX model (ultralytics/ultralytics#14121), CRLF line ends.
    const string TensorRtTable =
        "TRT-8601-EntropyCalibration2\r\nimages: 3b66eddc\r\n168: 3dc6cf6e\r\n169: 3c010a14\r\n";

    [Fact]
    public void ParsesATableAsTensorRtWritesIt()
    {
        var table = CalibrationTableFile.Parse(TensorRtTable, "yolo.cache");
        Assert.Equal("EntropyCalibration2", table.Algorithm);
        Assert.Equal(["images", "168", "169"], table.Scales.Keys);
        // 0x3b66eddc: sign 0, exponent 0x76 = 118 (2^-9), mantissa 0x66eddc / 2^23 = 0.8042... → 1.8042... × 2^-9
        Assert.Equal((1 + 0x66eddc / 8388608.0) / 512, table.Scales["images"], 12);
        // 0x3c010a14 = (1 + 0x010a14 / 2^23) × 2^-7; × 127 = 1.000244..., as ONNX Runtime computes the dynamic range
        Assert.Equal((1 + 0x010a14 / 8388608.0) / 128 * 127, table.Amax("169"), 9);
        Assert.Equal(1.0002441, table.Amax("169"), 6);
    }

    [Fact]
    public void WritesTensorRtsLayoutAndReadsItBackBitForBit()
    {
        var table = new CalibrationTable("EntropyCalibration2",
        [
            KeyValuePair.Create("backbones.ResNet18FPN.features.conv1", 2.64f / 127),
            KeyValuePair.Create("cls_head.0", BitConverter.UInt32BitsToSingle(0x3c010a14)),
            KeyValuePair.Create("tiny", 1e-30f),
        ]);
        string text = CalibrationTableFile.Format(table);
        var lines = text.Split('\n');
        Assert.Equal("TRT-100000-EntropyCalibration2", lines[0]);
        Assert.Equal("cls_head.0: 3c010a14", lines[2]);
        Assert.Matches("^tiny: 0[0-9a-f]{7}$", lines[3]); // eight digits, leading zero kept
        Assert.Equal("", lines[^1]);

        var path = Path.Combine(Paths.TempDir(), "int8.cache");
        CalibrationTableFile.Save(table, path);
        var back = CalibrationTableFile.Load(path);
        Assert.Equal(table.Algorithm, back.Algorithm);
        Assert.Equal(table.Scales.Keys, back.Scales.Keys);
        foreach (var (name, scale) in table.Scales)
            Assert.Equal(BitConverter.SingleToUInt32Bits(scale), BitConverter.SingleToUInt32Bits(back.Scales[name]));
        Assert.False(File.Exists(path + ".tmp"));
    }

    [Fact]
    public void NamesMayContainColonsTheScaleFollowsTheLastOne()
    {
        var table = CalibrationTableFile.Parse("TRT-100300-MinMaxCalibration\nconv1/Relu:0: 3c010a14\n\n", "t");
        Assert.Equal("MinMaxCalibration", table.Algorithm);
        Assert.Equal(BitConverter.UInt32BitsToSingle(0x3c010a14), table.Scales["conv1/Relu:0"]);
    }

    [Theory]
    [InlineData("calibration\nx: 3c010a14\n", "line 1: expected a TensorRT calibration table header")]
    [InlineData("TRT-x-EntropyCalibration2\n", "line 1:")]
    [InlineData("TRT-8601-EntropyCalibration2\nx 3c010a14\n", "line 2: expected 'tensor name: 8 hex digits")]
    [InlineData("TRT-8601-EntropyCalibration2\nx: 3c010a14z\n", "line 2:")]
    [InlineData("TRT-8601-EntropyCalibration2\nx: 13c010a14\n", "line 2:")]
    [InlineData("TRT-8601-EntropyCalibration2\nx: 00000000\n", "line 2: the scale of 'x' is 0")]
    [InlineData("TRT-8601-EntropyCalibration2\nx: bc010a14\n", "line 2: the scale of 'x' is -")]
    [InlineData("TRT-8601-EntropyCalibration2\nx: 3c010a14\nx: 3c010a14\n", "line 3: 'x' is listed twice")]
    public void BadTablesAreOneLineErrorsNamingFileAndLine(string text, string expected)
    {
        var e = Assert.Throws<BadInputException>(() => CalibrationTableFile.Parse(text, "my.cache"));
        Assert.StartsWith("my.cache: ", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void AMissingTableSaysWhatToDo()
    {
        var e = Assert.Throws<BadInputException>(() => CalibrationTableFile.Load("/nonexistent/int8.cache"));
        Assert.Contains("--calibration-images", e.Message);
    }

    [Fact]
    public void RangesBecomeScalesOfAmaxOver127()
    {
        var table = CalibrationTable.FromRanges(CalibrationMethod.Percentile,
            [KeyValuePair.Create("a", 12.7), KeyValuePair.Create("zero", 0.0)]);
        Assert.Equal("PercentileCalibration", table.Algorithm);
        Assert.Equal(0.1f, table.Scales["a"]);
        Assert.True(table.Scales["zero"] > 0);
    }
}
