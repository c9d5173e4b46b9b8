using RetinaNet.Core;
using System.Diagnostics;
using System.Globalization;

namespace RetinaNet.Training;

/// <summary>ODTK's training log line: <c>[{iter:>width}/{iters}] focal loss: {:.3f}, box loss: {:.3f},
/// {:.3f}s/{batch}-batch (fw: {:.3f}s, bw: {:.3f}s), {:.1f} im/s, lr: {:.2g}</c> with width the number of digits of
/// iters and im/s = batch / seconds per batch.</summary>
public static class TrainingLogLine
{
    public static string Format(long iteration, long iterations, double focalLoss, double boxLoss,
        double secondsPerBatch, int batchSize, double forwardSeconds, double backwardSeconds, double learningRate)
    {
        var inv = CultureInfo.InvariantCulture;
        int width = iterations.ToString(inv).Length;
        return $"[{iteration.ToString(inv).PadLeft(width)}/{iterations.ToString(inv)}]"
            + $" focal loss: {PythonFormat.Fixed(focalLoss, 3)}"
            + $", box loss: {PythonFormat.Fixed(boxLoss, 3)}"
            + $", {PythonFormat.Fixed(secondsPerBatch, 3)}s/{batchSize.ToString(inv)}-batch"
            + $" (fw: {PythonFormat.Fixed(forwardSeconds, 3)}s, bw: {PythonFormat.Fixed(backwardSeconds, 3)}s)"
            + $", {PythonFormat.Fixed(batchSize / secondsPerBatch, 1)} im/s"
            + $", lr: {PythonFormat.General(learningRate, 2)}";
    }
}
