using RetinaNet.Boxes;

namespace RetinaNet.Model;

/// <summary>How the detector runs: post-processing (ODTK: threshold 0.05, top-n 1000 per level, NMS 0.5, 100
/// detections) and the input scale (ODTK's --resize 800, --max-size 1333: shorter side, longer side at most). Training
/// stores its own, so infer and export run a model at the scale it was trained for.</summary>
public sealed record InferenceConfig
{
    public double ScoreThreshold { get; init; } = 0.05;
    public int TopN { get; init; } = 1000;
    public double NmsThreshold { get; init; } = 0.5;
    public int Detections { get; init; } = 100;
    public int Resize { get; init; } = 800;
    public int MaxSize { get; init; } = 1333;

    public void Validate()
    {
        if (!(ScoreThreshold >= 0 && ScoreThreshold < 1)) throw new ArgumentException("score threshold must be in [0, "
            + $"1), got {ScoreThreshold}");
        if (TopN <= 0) throw new ArgumentException($"top-n must be positive, got {TopN}");
        if (!(NmsThreshold > 0 && NmsThreshold <= 1)) throw new ArgumentException("NMS threshold must be in (0, 1], "
            + $"got {NmsThreshold}");
        if (Detections <= 0) throw new ArgumentException($"detections must be positive, got {Detections}");
        if (Resize <= 0 || MaxSize <= 0)
            throw new ArgumentException($"resize and max size must be positive, got {Resize} and {MaxSize}");
    }
}

/// <summary>Settings given for one run, each replacing the model's stored one when set (null: the stored one): what
/// infer's and export's options and the public Detector's options both come down to.</summary>
public sealed record InferenceOverrides(double? ScoreThreshold = null, int? TopN = null, double? NmsThreshold = null,
    int? Detections = null, int? Resize = null, int? MaxSize = null)
{
    public InferenceConfig Apply(InferenceConfig stored) => stored with
    {
        ScoreThreshold = ScoreThreshold ?? stored.ScoreThreshold, TopN = TopN ?? stored.TopN,
        NmsThreshold = NmsThreshold ?? stored.NmsThreshold, Detections = Detections ?? stored.Detections,
        Resize = Resize ?? stored.Resize, MaxSize = MaxSize ?? stored.MaxSize,
    };
}

/// <summary>Everything that defines a detector besides its weights; saved in checkpoints.</summary>
public sealed record DetectorConfig
{
    /// <summary>The training annotations' categories in class order (class i is Categories[i]); empty when unknown
    /// (ODTK's checkpoints).</summary>
    public IReadOnlyList<Category> Categories { get; init; } = [];
    public IReadOnlyList<string> Backbones { get; init; } = ["ResNet50FPN"];
    public int Classes { get; init; } = 80;
    public AnchorConfig Anchors { get; init; } = new();
    public InferenceConfig Inference { get; init; } = new();
    /// <summary>ODTK's anchor_ious: IoU below the first is background, at or above the second foreground.</summary>
    public (double Background, double Foreground) AnchorIous { get; init; } = (0.4, 0.5);

    /// <summary>Rotated boxes (ODTK's <c>--rotated-bbox</c>): anchors at <see cref="AnchorConfig.Angles"/>, 6 box
    /// values per anchor (x, y, w, h deltas, sin, cos), matching by rotated IoU.</summary>
    public bool Rotated => Anchors.Rotated;

    /// <summary>Box head outputs per anchor.</summary>
    public int BoxValues => Rotated ? 6 : 4;

    public void Validate()
    {
        if (Backbones.Count == 0) throw new ArgumentException("at least one backbone is needed");
        // throws the listing message
        foreach (var b in Backbones) if (!Model.Backbones.IsKnown(b)) Model.Backbones.CreateBody(b);
        if (Classes <= 0) throw new ArgumentException($"--classes must be positive, got {Classes}");
        if (!(AnchorIous.Background > 0 && AnchorIous.Background <= AnchorIous.Foreground
            && AnchorIous.Foreground <= 1))
            throw new ArgumentException("anchor IoUs must satisfy 0 < background <= foreground <= 1, got "
                + $"{AnchorIous.Background} {AnchorIous.Foreground}");
        Anchors.Validate();
        Inference.Validate();
    }
}
