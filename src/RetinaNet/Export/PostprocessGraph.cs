using RetinaNet.Boxes;
using RetinaNet.Model;
using static RetinaNet.Export.GraphBuilder;
using static TorchSharp.torch;
using DataType = Onnx.TensorProto.Types.DataType;

namespace RetinaNet.Export;

/// <summary>Decode and NMS in the graph, in float32, as <see cref="Inference.Postprocess"/> and
/// <see cref="BatchedNms"/>: per level sigmoid, top-n over A*C*H*W, deltas and anchors gathered, ODTK's box decoding
/// clamped to the input; then class-aware greedy NMS through ONNX NonMaxSuppression run per class (scores [batch,
/// classes, K], a candidate scoring only in its own class row), boxes passed as [x1, y1, x2 + 1, y2 + 1] so that its
/// IoU is our inclusive-pixel IoU; the kept candidates are ranked by score (TopK: ties to the lower index, i.e.
/// candidate order, as our stable sort) and the first D returned, padded with score 0.</summary>
sealed class PostprocessGraph(GraphBuilder graph, DetectorConfig config, int height, int width)
{
    readonly InferenceConfig settings = config.Inference;

    public void Detections(string[] classLogits, string[] boxDeltas)
    {
        var scores = new List<string>(); var boxes = new List<string>(); var classes = new List<string>();
        long candidates = 0;
        for (int level = 0; level < classLogits.Length; level++)
        {
            var (s, b, c, k) = Level(level, classLogits[level], boxDeltas[level]);
            scores.Add(s); boxes.Add(b); classes.Add(c);
            candidates += k;
        }
        var allScores = graph.Node("Concat", "candidates.scores", scores, Attr("axis", 1L));
        var allBoxes = graph.Node("Concat", "candidates.boxes", boxes, Attr("axis", 1L));
        var allClasses = graph.Node("Concat", "candidates.classes", classes, Attr("axis", 1L));
        Nms(allScores, allBoxes, allClasses, candidates);
    }

    (string Scores, string Boxes, string Classes, long Count) Level(int level, string logits, string deltas)
    {
        string n = $"decode.level{level + 1}";
        int stride = PyramidLevels.StrideOf(level);
        long h = height / stride, w = width / stride, hw = h * w;
        int a = config.Anchors.Count, c = config.Classes;
        long k = Math.Min(settings.TopN, a * c * hw);

        var probabilities = graph.Node("Sigmoid", $"{n}.sigmoid", [logits]);
        var flat = graph.Node("Reshape", $"{n}.flat", [probabilities, Ints($"{n}.flat.shape", 0, -1)]);
        var top = graph.Node("TopK", $"{n}.topk", [flat, Ints($"{n}.k", k)], 2,
            Attr("axis", 1L), Attr("largest", 1L), Attr("sorted", 1L));
        var (score, index) = (top[0], top[1]);
        // index = ((a*C + c)*H + y)*W + x
        var anchor = graph.Node("Div", $"{n}.anchor", [index, Ints($"{n}.chw", c * hw)]);
        var pixelPlane = graph.Node("Div", $"{n}.plane", [index, Ints($"{n}.hw", hw)]);
        var cls = graph.Node("Mod", $"{n}.class", [pixelPlane, Ints($"{n}.classes", c)]);
        var pixel = graph.Node("Mod", $"{n}.pixel", [index, $"{n}.hw"]);
        var row = graph.Node("Add", $"{n}.row",
            [graph.Node("Mul", $"{n}.anchor.offset", [anchor, $"{n}.hw"]), pixel]); // anchor row a*HW + p

        // Box channel a*4 + j at pixel p → [batch, A*HW, 4] rows in anchor order.
        var map = graph.Node("Reshape", $"{n}.boxmap", [deltas, Ints($"{n}.boxmap.shape", 0, a, 4, hw)]);
        var rows = graph.Node("Reshape", $"{n}.boxrows", [
            graph.Node("Transpose", $"{n}.boxmap.t", [map], Attr("perm", 0L, 1, 3, 2)),
            Ints($"{n}.boxrows.shape", 0, -1, 4)]);
        var picked = graph.Node("GatherND", $"{n}.deltas",
            [rows, graph.Node("Unsqueeze", $"{n}.row.index", [row, Ints("axis.last", -1)])], Attr("batch_dims", 1L));

        var (centres, sizes) = AnchorInitializers(n, stride, h, w);
        var anchorCentre = graph.Node("Gather", $"{n}.anchor.centre", [centres, row], Attr("axis", 0L));
        var anchorSize = graph.Node("Gather", $"{n}.anchor.size", [sizes, row], Attr("axis", 0L));
        var boxes = Decode(n, picked, anchorCentre, anchorSize);
        return (score, boxes, cls, k);
    }

    // BoxCoder.Decode, op for op: ctr = d.xy * wh_a + ctr_a; wh = exp(min(d.wh, cap)) * wh_a;
    // corners ctr - 0.5 wh and ctr + 0.5 wh - 1, each clamped to [0, (W - 1, H - 1)].
    string Decode(string n, string deltas, string anchorCentre, string anchorSize)
    {
        var dxy = graph.Node("Slice", $"{n}.dxy",
            [deltas, Ints("slice.0", 0), Ints("slice.2", 2), Ints("axis.last", -1)]);
        var dwh = graph.Node("Slice", $"{n}.dwh", [deltas, "slice.2", Ints("slice.4", 4), "axis.last"]);
        var centre = graph.Node("Add", $"{n}.centre",
            [graph.Node("Mul", $"{n}.centre.offset", [dxy, anchorSize]), anchorCentre]);
        var capped = graph.Node("Min", $"{n}.dwh.capped",
            [dwh, Float("decode.max_log_scale", (float)BoxCoder.MaxLogScale)]);
        var size = graph.Node("Mul", $"{n}.size", [graph.Node("Exp", $"{n}.scale", [capped]), anchorSize]);
        var half = graph.Node("Mul", $"{n}.half", [size, Float("decode.half", 0.5f)]);
        var xy1 = graph.Node("Sub", $"{n}.xy1", [centre, half]);
        var xy2 = graph.Node("Sub", $"{n}.xy2",
            [graph.Node("Add", $"{n}.xy2.open", [centre, half]), Float("decode.one", 1f)]);
        var zero = Float("decode.zero", 0f);
        var limit = graph.HasValue("decode.limit") ? "decode.limit"
            : graph.Initializer("decode.limit", OnnxTensors.From([width - 1f, height - 1f]));
        string Clamp(string x, string name) =>
            graph.Node("Min", $"{name}.clamped", [graph.Node("Max", $"{name}.nonnegative", [x, zero]), limit]);
        return graph.Node("Concat", $"{n}.boxes", [Clamp(xy1, $"{n}.xy1"), Clamp(xy2, $"{n}.xy2")], Attr("axis", -1L));
    }

    // Anchors of the level as the runner makes them (Anchors.ForLevel), as centres and sizes [A*H*W, 2].
    (string Centres, string Sizes) AnchorInitializers(string n, int stride, long h, long w)
    {
        using var scope = NewDisposeScope();
        var anchors = Anchors.ForLevel(stride, h, w, config.Anchors);
        var (centre, size) = BoxCoder.CentreSize(anchors);
        return (graph.Initializer($"{n}.anchors.centre", OnnxTensors.From(centre)),
            graph.Initializer($"{n}.anchors.size", OnnxTensors.From(size)));
    }

    void Nms(string scores, string boxes, string classes, long candidates)
    {
        int c = config.Classes, d = settings.Detections;
        var valid = graph.Node("GreaterOrEqual", "nms.valid",
            [scores, Float("nms.score_threshold", (float)settings.ScoreThreshold)]);
        var minusOne = Float("nms.minus_one", -1f);
        var masked = graph.Node("Where", "nms.masked", [valid, scores, minusOne]);
        // A candidate scores in its own class row only: [batch, C, K].
        var ownClass = graph.Node("Equal", "nms.own_class", [
            graph.Node("Unsqueeze", "nms.classes.row", [classes, Ints("axis.1", 1)]),
            graph.Initializer("nms.class_range",
                OnnxTensors.From(Enumerable.Range(0, c).Select(i => (long)i).ToArray(), 1, c, 1))]);
        var perClass = graph.Node("Where", "nms.class_scores",
            [ownClass, graph.Node("Unsqueeze", "nms.masked.row", [masked, "axis.1"]), minusOne]);
        var openBoxes = graph.Node("Add", "nms.boxes",
            [boxes, graph.Initializer("nms.inclusive", OnnxTensors.From([0f, 0f, 1f, 1f]))]);
        var selected = graph.Node("NonMaxSuppression", "nms", [openBoxes, perClass, Ints("nms.max_per_class", d),
            graph.Initializer("nms.iou_threshold", OnnxTensors.From([(float)settings.NmsThreshold])),
            graph.Initializer("nms.min_score", OnnxTensors.From([-0.5f]))]);
        // Kept candidates keep their score, the rest -1; then the D best in score order (ties: candidate order).
        var keptIndex = graph.Node("Gather", "nms.kept.index", [selected, Ints("nms.batch_and_box", 0, 2)],
            Attr("axis", 1L));
        var keptScores = graph.Node("GatherND", "nms.kept.scores", [masked, keptIndex]);
        var none = graph.Node("ConstantOfShape", "nms.none", [graph.Node("Shape", "nms.shape", [masked])],
            Attr("value", OnnxTensors.From([-1f], 1)));
        var ranked = graph.Node("ScatterND", "nms.ranked", [none, keptIndex, keptScores]);
        long take = Math.Min(d, candidates);
        var best = graph.Node("TopK", "detections.topk", [ranked, Ints("detections.k", take)], 2,
            Attr("axis", 1L), Attr("largest", 1L), Attr("sorted", 1L));
        var kept = graph.Node("GreaterOrEqual", "detections.kept", [best[0], Float("detections.zero", 0f)]);
        var keptRow = graph.Node("Unsqueeze", "detections.kept.row", [kept, "axis.last"]);
        var outScores = graph.Node("Where", "detections.scores", [kept, best[0], "detections.zero"]);
        var gatheredBoxes = graph.Node("GatherND", "detections.boxes.gathered",
            [boxes, graph.Node("Unsqueeze", "detections.order", [best[1], "axis.last"])], Attr("batch_dims", 1L));
        var outBoxes = graph.Node("Where", "detections.boxes", [keptRow, gatheredBoxes, "detections.zero"]);
        var gatheredClasses = graph.Node("GatherElements", "detections.classes.gathered", [classes, best[1]],
            Attr("axis", 1L));
        var outClasses = graph.Node("Where", "detections.classes",
            [kept, gatheredClasses, Ints("detections.no_class", 0)]);
        if (take < d)
        {
            outScores = Pad(outScores, "detections.scores.padded", [0, 0, 0, d - take]);
            outBoxes = Pad(outBoxes, "detections.boxes.padded", [0, 0, 0, 0, d - take, 0]);
            outClasses = Pad(outClasses, "detections.classes.padded", [0, 0, 0, d - take]);
        }
        graph.Output(outBoxes, OnnxNames.Boxes, DataType.Float, "batch", d, 4);
        graph.Output(outScores, OnnxNames.Scores, DataType.Float, "batch", d);
        graph.Output(outClasses, OnnxNames.Classes, DataType.Int64, "batch", d);
    }

    string Pad(string x, string name, long[] pads) =>
        graph.Node("Pad", name, [x, Ints($"{name}.pads", pads)], Attr("mode", "constant"));

    string Ints(string name, params long[] values) =>
        graph.HasValue(name) ? name : graph.Initializer(name, OnnxTensors.From(values));

    string Float(string name, float value) =>
        graph.HasValue(name) ? name : graph.Initializer(name, OnnxTensors.Scalar(value));
}
