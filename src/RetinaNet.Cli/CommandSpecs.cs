using RetinaNet.Boxes;
using System.Globalization;
using RetinaNet.Model;

namespace RetinaNet.Cli;

/// <summary>The command lines: every ODTK option keeps its name, default and meaning; ours are marked.</summary>
public static class CommandSpecs
{
    static string[] D(params object[] v) => v.Select(x => Convert.ToString(x, CultureInfo.InvariantCulture)!).ToArray();

    public static readonly OptionSpec Master = new("--master", Arity.One, "address and port of the master worker",
        "address:port", D("127.0.0.1:29500"));

    static readonly InferenceConfig Defaults = new();

    // The model's own settings: a checkpoint stores them, infer and export use them unless given.
    const string ModelsSetting = "the model's";

    // Ours, shared by train, infer and export: post-processing settings and the device.
    static IEnumerable<OptionSpec> Postprocessing(string? from = null) =>
    [
        new("--score-threshold", Arity.One, "(ours) minimum class score kept by decoding", "value",
            D(Defaults.ScoreThreshold), DefaultFrom: from),
        new("--top-n", Arity.One, "(ours) candidates kept per pyramid level before NMS", "number",
            D(Defaults.TopN), DefaultFrom: from),
        new("--nms", Arity.One, "(ours) NMS IoU threshold", "value", D(Defaults.NmsThreshold), DefaultFrom: from),
        new("--detections", Arity.One, "(ours) detections kept per image after NMS", "number",
            D(Defaults.Detections), DefaultFrom: from),
    ];

    // ODTK's input scale; train stores it in the checkpoint.
    static IEnumerable<OptionSpec> InputSize(string? from = null) =>
    [
        new("--resize", Arity.One, "resize to given size", "scale", D(Defaults.Resize), DefaultFrom: from),
        new("--max-size", Arity.One, "maximum resizing size", "max", D(Defaults.MaxSize), DefaultFrom: from),
    ];

    static readonly OptionSpec Device = new("--device", Arity.One,
        "(ours) cpu or cuda (default: cuda when a GPU is present)", "cpu|cuda");

    // Ours, shared by train and infer: several GPUs and machines.
    static IEnumerable<OptionSpec> MultiGpu() =>
    [
        new("--gpus", Arity.One, "(ours) GPUs (one process each) to use on this machine; default: all; " +
            "ignored under a launcher (RANK/WORLD_SIZE set)", "number"),
        new("--dist-timeout", Arity.One, "(ours) seconds any rank may keep the others waiting (joining, a silent " +
            "or stuck rank) before the job stops with an error naming it", "seconds", D(300)),
    ];

    // Ours, shared by train and infer: the data loader.
    static IEnumerable<OptionSpec> Loading() =>
    [
        new("--workers", Arity.One, "(ours) image loading threads (0: one per core, at most 12)", "number", D(0)),
        new("--skip-bad-images", Arity.Flag, "(ours) report and skip missing or corrupt images instead of stopping"),
    ];

    public static CommandSpec Train(int defaultBatch) => new("train",
        "Train a RetinaNet detector on COCO-style annotations.",
        [("model", "path to the output model, or the checkpoint to resume from")],
        [
            new("--annotations", Arity.One, "path to COCO style annotations", "path", Required: true),
            new("--images", Arity.One, "path to images", "path", D(".")),
            new("--backbone", Arity.OneOrMore, "backbone model (or list of)", "name", D("ResNet50FPN")),
            new("--classes", Arity.One, "number of classes", "num",
                DefaultFrom: "the annotation file's category count"),
            new("--batch", Arity.One, "batch size (over all GPUs)", "size", D(defaultBatch)),
            .. InputSize(),
            new("--jitter", Arity.Two, "jitter size within range", "min max", D(640, 1024)),
            new("--iters", Arity.One, "number of iterations to train for", "number", D(90000)),
            new("--milestones", Arity.Any, "list of iteration indices where learning rate decays", "iter",
                D(60000, 80000)),
            new("--schedule", Arity.One, "scale schedule (affecting iters and milestones)", "scale", D(1)),
            new("--full-precision", Arity.Flag, "train in full precision"),
            new("--lr", Arity.One, "learning rate", "value", D(0.01)),
            new("--warmup", Arity.One, "number of warmup iterations", "iterations", D(1000)),
            new("--gamma", Arity.One, "multiplicative factor of learning rate decay", "value", D(0.1)),
            new("--override", Arity.Flag, "override model (start over instead of resuming)"),
            new("--val-annotations", Arity.One, "path to COCO style validation annotations", "path"),
            new("--val-images", Arity.One, "path to validation images", "path"),
            new("--post-metrics", Arity.One, "post metrics to specified url", "url"),
            new("--fine-tune", Arity.One, "fine tune a pretrained model", "path"),
            new("--logdir", Arity.One,
                "directory where to write logs (TensorBoard events; ours: results.csv, results.png)", "logdir"),
            new("--val-iters", Arity.One, "number of iterations between each validation", "number", D(8000)),
            new("--patience", Arity.One, "(ours) stop after this many validations without a better mAP (0: never); " +
                "the best model is kept as MODEL.best.pth either way", "validations", D(0)),
            new("--with-dali", Arity.Flag, "use the GPU data path (nvJPEG decode, GPU resize)"),
            new("--augment-rotate", Arity.Flag, "use four-fold rotational augmentation"),
            new("--augment-free", Arity.Flag, "use free rotational augmentation (rotated boxes only)"),
            new("--augment-brightness", Arity.One, "adjust the brightness of the image", "value", D(0.002)),
            new("--augment-contrast", Arity.One, "adjust the contrast of the image", "value", D(0.002)),
            new("--augment-hue", Arity.One, "adjust the hue of the image", "value", D(0.0002)),
            new("--augment-saturation", Arity.One, "adjust the saturation of the image", "value", D(0.002)),
            new("--regularization-l2", Arity.One, "L2 regularization for optim", "alpha", D(0.0001)),
            new("--rotated-bbox", Arity.Flag, "detect rotated box"),
            new("--anchor-ious", Arity.Two, "anchor/bbox overlap threshold (background, foreground)", "value value",
                D(0.4, 0.5)),
            new("--absolute-angle", Arity.Flag, "regress absolute angle (rotated boxes only)"),
            new("--anchor-ratios", Arity.OneOrMore, "(ours) anchor aspect ratios (h/w)", "ratio",
                D(AnchorConfig.DefaultRatios.Cast<object>().ToArray())),
            new("--anchor-scales", Arity.OneOrMore, "(ours) anchor scales, in units of the level stride", "scale",
                D(AnchorConfig.DefaultScales.Cast<object>().ToArray())),
            new("--backbone-weights", Arity.One, "(ours) ImageNet weights for the backbone, torchvision layout " +
                "(.pth or .safetensors); none: random weights; default: torchvision's, fetched once", "path"),
            new("--checkpoint-interval", Arity.One, "(ours) seconds between checkpoints", "seconds", D(60)),
            new("--log-interval", Arity.One, "(ours) seconds between log lines (0: every iteration)", "seconds", D(10)),
            new("--augment-crop", Arity.Flag, "(ours) bbox-safe random crop, as ODTK's DALI pipeline"),
            new("--seed", Arity.One, "(ours) seed of the data order and augmentation", "number", D(0)),
            .. Loading(),
            .. MultiGpu(),
            .. Postprocessing(),
            Device,
        ]);

    public static CommandSpec Infer(int defaultBatch) => new("infer",
        "Run inference (and COCO evaluation when annotations are given).",
        [("model", "path to model (.pth checkpoint, .safetensors, exported .onnx, or .plan/.engine built by export)")],
        [
            new("--images", Arity.One,
                "images: a folder, an image, a glob ('photos/*.jpg') or a .txt list of paths", "path", D(".")),
            new("--annotations", Arity.One, "evaluate using provided annotations", "annotations"),
            new("--output", Arity.OneOrMore,
                "save detections to specified JSON file(s); - writes JSON Lines to stdout", "file",
                D("detections.json")),
            new("--batch", Arity.One, "batch size (over all GPUs)", "size", D(defaultBatch)),
            .. InputSize(ModelsSetting),
            new("--with-dali", Arity.Flag, "use the GPU data path (nvJPEG decode, GPU resize)"),
            new("--full-precision", Arity.Flag, "inference in full precision"),
            new("--rotated-bbox", Arity.Flag, "inference using a rotated bounding box model"),
            new("--output-format", Arity.One,
                "(ours) odtk ({annotations, images, categories}) or coco-results (a plain list)", "format",
                D("odtk")),
            new("--cuda-graphs", Arity.Flag, "(ours) replay forward and decode as CUDA graphs, one per batch shape " +
                "(up to 4): much lower latency at small batches, more GPU memory"),
            new("--video", Arity.One, "(ours) detect in a video file or stream ffmpeg opens (rtsp://, http://...) " +
                "instead of --images: JSON Lines per frame to --output (default detections.jsonl)", "source"),
            new("--save-video", Arity.One,
                "(ours) with --video: write the frames with their boxes drawn (.mp4: H.264; .mkv: lossless)", "path"),
            .. Loading(),
            .. MultiGpu(),
            .. Postprocessing(ModelsSetting),
            Device,
        ]);

    public static CommandSpec Serve() => new("serve",
        "(ours) Serve a model over HTTP: POST /v1/detect, a page at /, /metrics.",
        [("model", "path to model (.pth checkpoint, .safetensors, exported .onnx, .plan or .engine)")],
        [
            new("--host", Arity.One, "address to listen on (0.0.0.0: every interface)", "address", D("127.0.0.1")),
            new("--port", Arity.One, "TCP port (0: any free one)", "port", D(8080)),
            new("--max-batch", Arity.One, "most images run as one model call", "size", D(8)),
            new("--max-delay-ms", Arity.One, "how long a request waits for others to share its batch", "ms", D(5)),
            new("--queue", Arity.One, "images waiting beyond this are answered 503 with Retry-After", "images", D(64)),
            new("--max-body-mb", Arity.One, "largest request body", "MB", D(32)),
            new("--max-pixels", Arity.One, "largest image (width x height), checked before decoding", "pixels",
                D(25_000_000)),
            new("--timeout", Arity.One, "seconds a request may wait for its detections (then 504)", "seconds", D(30)),
            new("--full-precision", Arity.Flag, "inference in full precision"),
            .. InputSize(ModelsSetting),
            .. Postprocessing(ModelsSetting),
            Device,
        ]);

    public static CommandSpec Export() => new("export",
        "Export a model to ONNX (or a TensorRT engine through ONNX Runtime).",
        [("model", "path to model"), ("export", "path to exported output (.onnx, .plan or .engine)")],
        [
            new("--size", Arity.OneOrMore, "input size (square) or sizes (h w)", "height width", D(1280)),
            new("--batch", Arity.One, "max batch size to use for TensorRT engine", "size", D(2)),
            new("--full-precision", Arity.Flag, "export in full instead of half precision"),
            new("--int8", Arity.Flag, "calibrate model and export in int8 precision"),
            new("--calibration-batches", Arity.One, "number of batches to use for int8 calibration", "size", D(2)),
            new("--calibration-images", Arity.One, "path to calibration images to use for int8 calibration", "path",
                D("")),
            new("--calibration-table", Arity.One,
                "path of existing calibration table to load from, or name of new calibration table", "path", D("")),
            new("--calibration-method", Arity.One, "(ours) how int8 ranges are chosen: entropy " +
                "(TensorRT's EntropyCalibration2), minmax, or percentile", "method", D("entropy")),
            new("--calibration-percentile", Arity.One,
                "(ours) percentile of |activation| kept by --calibration-method percentile", "percent", D(99.99)),
            new("--int8-target", Arity.One, "(ours) runtime the int8 graph is laid out for: onnxruntime (quantized " +
                "convolutions on ONNX Runtime's CPU provider) or tensorrt (default: tensorrt for an engine, else " +
                "onnxruntime)", "runtime"),
            new("--verbose", Arity.Flag, "enable verbose logging"),
            new("--rotated-bbox", Arity.Flag, "inference using a rotated bounding box model"),
            new("--dynamic-batch-opts", Arity.Three, "profile batch sizes for the TensorRT engine (min, opt, max)",
                "min opt max", D(1, 8, 16)),
            new("--opset", Arity.One, "ONNX opset version (13..18; default 17)", "version"),
            new("--raw-heads", Arity.Flag, "(ours) export only the network in ODTK's layout (normalised input_1; " +
                "sigmoid score_N and box_N maps), no decode or NMS"),
            .. Postprocessing(ModelsSetting),
            Device with { Help = "(ours) cpu or cuda for int8 calibration (default: cuda when a GPU is present)" },
        ]);

    public static CommandSpec Summary() => new("summary",
        "(ours) Build a detector, print its structure and run it once on a synthetic image.",
        [],
        [
            new("--model", Arity.One, "a checkpoint to describe instead of a fresh model", "path"),
            new("--backbone", Arity.OneOrMore, "backbone model (or list of)", "name", D("ResNet18FPN")),
            new("--classes", Arity.One, "number of classes", "num", D(80)),
            new("--size", Arity.Two, "synthetic input height and width (multiples of 128)", "height width",
                D(512, 640)),
            .. Postprocessing(),
            Device,
        ]);
}
