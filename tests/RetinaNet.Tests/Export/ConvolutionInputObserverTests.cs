using RetinaNet.Data;
using RetinaNet.Data.Imaging;
using RetinaNet.Export.Quantization;
using RetinaNet.Model;
using Xunit;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Export;

/// <summary>Hooks see every quantized convolution's input under its module path; the calibration data path feeds them
/// what the exported model will see.</summary>
[Collection("global torch RNG")] // builds randomly initialised models
public class ConvolutionInputObserverTests
{
    [Fact]
    public void EveryConvolutionButTheOutputLayersIsObservedUnderItsModulePath()
    {
        using var scope = NewDisposeScope();
        using var model = new RetinaNetModel(new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 3 });
        model.eval();
        var images = randn(2, 3, 128, 256);
        Dictionary<string, double> ranges;
        using (var observer = new ConvolutionInputObserver(model, () => new MaxCollector(),
            Int8Policy.FloatConvolutions(model)))
        {
            using (no_grad()) using (model.forward(images)) { }
            ranges = observer.Ranges().ToDictionary();
        }
        // independent references: the tensors each convolution reads, computed piece by piece
        using var noGrad = no_grad();
        var fpn = model.BackboneModules.Single().Backbone;
        var c = fpn.Body.forward(images);
        var levels = model.Features(images);
        double MaxAbs(params Tensor[] ts) => ts.Max(t => t.abs().max().item<float>());
        const string body = "backbones.ResNet18FPN.features.";
        Assert.Equal(MaxAbs(images), ranges[body + "conv1"]);
        Assert.Equal(MaxAbs(c[2]), ranges["backbones.ResNet18FPN.lateral5"]);
        Assert.Equal(MaxAbs(c[2]), ranges["backbones.ResNet18FPN.pyramid6"]);
        Assert.Equal(MaxAbs(c[0]), ranges[body + "layer3.0.conv1"]); // layer3 reads C3
        Assert.Equal(MaxAbs(c[0]), ranges[body + "layer3.0.downsample.0"]);
        Assert.Equal(MaxAbs(levels), ranges["cls_head.0"]); // the heads run on all five levels
        Assert.Equal(MaxAbs(levels), ranges["box_head.0"]);
        // every Conv2d but the two output layers, nothing else
        var convs = model.named_modules().Where(m => m.module is TorchSharp.Modules.Conv2d).Select(m => m.name)
            .ToList();
        Assert.Equal(convs.Except(["cls_head.8", "box_head.8"]).Order(), ranges.Keys.Order());
        Assert.Equal(28 + 8, ranges.Count);
    }

    [Fact]
    public void HooksAreRemovedWhenTheObserverIsDisposed()
    {
        using var scope = NewDisposeScope();
        using var model = new RetinaNetModel(new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 3 });
        var collectors = new List<MaxCollector>();
        using (new ConvolutionInputObserver(model, () => { var m = new MaxCollector(); collectors.Add(m); return m; },
            new HashSet<string>())) { }
        using (no_grad()) using (model.forward(zeros(1, 3, 128, 128))) { }
        Assert.All(collectors, c => Assert.Throws<InvalidOperationException>(() => c.Amax()));
    }

    [Fact]
    public void CalibrationFeedsNormalisedImagesPaddedToTheExportSize()
    {
        // Two solid images: pure blue (0, 0, 255) and black. Normalised, blue's B channel is (1 - 0.406) / 0.225 = 2.64
        // and black's R channel (0 - 0.485) / 0.229 = -2.118: the first convolution's minmax range is 2.64 whatever
        // the resize and padding (zeros). The image is 200 x 100: it resizes into 256 x 128 and is padded to 256 x 256.
        var dir = Paths.TempDir();
        foreach (var (name, blue) in new[] { ("blue.png", (byte)255), ("black.png", (byte)0) })
        {
            var pixels = new byte[200 * 100 * 3];
            for (int i = 2; i < pixels.Length; i += 3) pixels[i] = blue;
            ImageEncoder.SavePng(new RgbImage(200, 100, pixels), Path.Combine(dir, name));
        }
        using var model = new RetinaNetModel(new DetectorConfig { Backbones = ["ResNet18FPN"], Classes = 3 });
        var log = new StringWriter();
        var table = Calibration.Run(model, new CalibrationData(dir, Batch: 1, Batches: 5, Height: 256, Width: 256, CPU),
            new CalibrationSettings(CalibrationMethod.MinMax), log);
        Assert.Equal("MinMaxCalibration", table.Algorithm);
        Assertions.Close((1 - 0.406) / 0.225, table.Amax("backbones.ResNet18FPN.features.conv1"), 1e-5,
            "conv1 input range");
        Assert.Equal(36, table.Scales.Count);
        Assert.Contains("on 2 images", log.ToString()); // 5 batches of 1 asked, the folder has 2
    }
}
