using RetinaNet.Data.Loading;
using static RetinaNet.Export.GraphBuilder;
using DataType = Onnx.TensorProto.Types.DataType;

namespace RetinaNet.Export;

/// <summary>The full graph's input stage, as <see cref="DeviceBatch.From"/>: uint8 pixels to float / 255, ImageNet
/// mean and std per channel, then zero outside each image's (height, width), so padding looks as in
/// training.</summary>
static class InputGraph
{
    public static string Normalised(GraphBuilder graph, int height, int width)
    {
        var images = graph.Input(OnnxNames.Images, DataType.Uint8, "batch", 3, height, width);
        var sizes = graph.Input(OnnxNames.ImageSizes, DataType.Int64, "batch", 2);
        var x = graph.Node("Cast", "input.float", [images], Attr("to", (long)DataType.Float));
        x = graph.Node("Div", "input.unit", [x, graph.Initializer("input.255", OnnxTensors.Scalar(255f))]);
        x = graph.Node("Sub", "input.centred",
            [x, graph.Initializer("input.mean", OnnxTensors.From(DeviceBatch.Mean, 1, 3, 1, 1))]);
        x = graph.Node("Div", "input.normalised",
            [x, graph.Initializer("input.std", OnnxTensors.From(DeviceBatch.Std, 1, 3, 1, 1))]);
        var shape = graph.Initializer("input.size.shape", OnnxTensors.From([-1L, 1, 1, 1]));
        string Extent(int column, string name)
        {
            var slice = graph.Node("Slice", $"input.{name}",
                [sizes, Ints($"input.{name}.start", column), Ints($"input.{name}.end", column + 1),
                Ints($"input.{name}.axis", 1)]);
            return graph.Node("Reshape", $"input.{name}.view", [slice, shape]);
        }
        var rows = graph.Initializer("input.rows",
            OnnxTensors.From(Enumerable.Range(0, height).Select(i => (long)i).ToArray(), 1, 1, height, 1));
        var cols = graph.Initializer("input.columns",
            OnnxTensors.From(Enumerable.Range(0, width).Select(i => (long)i).ToArray(), 1, 1, 1, width));
        var inside = graph.Node("And", "input.inside", [
            graph.Node("Less", "input.inside.rows", [rows, Extent(0, "height")]),
            graph.Node("Less", "input.inside.columns", [cols, Extent(1, "width")])]);
        var mask = graph.Node("Cast", "input.mask", [inside], Attr("to", (long)DataType.Float));
        return graph.Node("Mul", "input.masked", [x, mask]);

        string Ints(string name, long value) => graph.Initializer(name, OnnxTensors.From([value]));
    }

    /// <summary>The raw-heads graph's input (ODTK's): already normalised float pixels.</summary>
    public static string Raw(GraphBuilder graph, int height, int width) =>
        graph.Input(OnnxNames.RawInput, DataType.Float, "batch", 3, height, width);
}
