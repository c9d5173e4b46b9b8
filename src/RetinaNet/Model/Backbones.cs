namespace RetinaNet.Model;

/// <summary>The backbones ODTK offers, by ODTK's names.</summary>
public static class Backbones
{
    static readonly Dictionary<string, Func<FeatureBody>> Factories = new(StringComparer.Ordinal)
    {
        ["ResNet18FPN"] = () => new ResNetBody([2, 2, 2, 2], bottleneck: false),
        ["ResNet34FPN"] = () => new ResNetBody([3, 4, 6, 3], bottleneck: false),
        ["ResNet50FPN"] = () => new ResNetBody([3, 4, 6, 3], bottleneck: true),
        ["ResNet101FPN"] = () => new ResNetBody([3, 4, 23, 3], bottleneck: true),
        ["ResNet152FPN"] = () => new ResNetBody([3, 8, 36, 3], bottleneck: true),
        ["ResNeXt50_32x4dFPN"] = () => new ResNetBody([3, 4, 6, 3], bottleneck: true, groups: 32, widthPerGroup: 4),
        ["ResNeXt101_32x8dFPN"] = () => new ResNetBody([3, 4, 23, 3], bottleneck: true, groups: 32, widthPerGroup: 8),
        ["MobileNetV2FPN"] = () => new MobileNetV2Body(),
    };

    /// <summary>torchvision's name for each body, whose ImageNet weights fit it.</summary>
    public static readonly IReadOnlyDictionary<string, string> TorchvisionNames = new Dictionary<string, string>
    {
        ["ResNet18FPN"] = "resnet18", ["ResNet34FPN"] = "resnet34", ["ResNet50FPN"] = "resnet50",
        ["ResNet101FPN"] = "resnet101", ["ResNet152FPN"] = "resnet152", ["ResNeXt50_32x4dFPN"] = "resnext50_32x4d",
        ["ResNeXt101_32x8dFPN"] = "resnext101_32x8d", ["MobileNetV2FPN"] = "mobilenet_v2",
    };

    public static IReadOnlyCollection<string> Names => Factories.Keys;

    public static bool IsKnown(string name) => Factories.ContainsKey(name);

    public static FeatureBody CreateBody(string name) =>
        Factories.TryGetValue(name, out var make)
            ? make()
            : throw new ArgumentException($"unknown backbone '{name}': choose one of "
            + $"{string.Join(", ", Factories.Keys)}");

    public static Fpn Create(string name) => new(CreateBody(name));
}
