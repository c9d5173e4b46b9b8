using RetinaNet.Boxes;
using RetinaNet.Model;
using RetinaNet.Native;
using static TorchSharp.torch;

namespace RetinaNet.Inference;

/// <summary>Forward, per-level decode and NMS replayed as one CUDA graph per input shape: at small batches the
/// detector is bound by launching ~1,000 kernels, and a replay launches them at once. NMS is our exact kernel pair
/// (<see cref="NmsKernel"/>) where it compiles; otherwise it follows eagerly (exact, a few host waits), or with
/// <see cref="KernelOptions.SuppressInGraph"/> inside the graph as <see cref="BatchedNms.RunWithoutHostWait"/>,
/// falling back to the exact NMS when that reports its result inexact (very long suppression chains, or detections
/// beyond its block). At most <c>maxShapes</c> shapes keep a graph (<see cref="GraphSlots"/> chooses
/// them); the others run eagerly.</summary>
public sealed class DetectionGraphs(Func<Tensor, Candidates> candidates, InferenceConfig config, int deviceIndex,
    KernelOptions kernels, int maxShapes = 4) : IDisposable
{
    readonly Dictionary<string, (Tensor Input, CudaGraphs.CapturedGraph Graph)> graphs = new();
    readonly GraphSlots slots = new(maxShapes);
    // one pool for all shapes: a replay's detections are copied out before the next replay, so the graphs can share
    // their memory (the largest shape's, not the sum of all of them); with KernelOptions.SharedCaptureStream one
    // capture stream as well, as torch.cuda.graph does
    readonly CudaGraphs.MemoryPool pool = CudaGraphs.NewPool();
    readonly CudaGraphs.CudaStream? stream = kernels.SharedCaptureStream ? CudaGraphs.SideStream(deviceIndex) : null;

    /// <summary>Detections for <paramref name="images"/> (capturing first for a new shape), owned by the caller and
    /// valid until the next call (which may free this shape's graph); null when this shape runs eagerly.</summary>
    public NmsResult? Run(Tensor images)
    {
        var key = $"{string.Join("x", images.shape)}:{images.dtype}:"
            + $"{string.Join(",", Enumerable.Range(0, (int)images.dim()).Select(i => images.stride(i)))}";
        var decision = slots.Next(key, out var evict);
        if (decision == GraphSlots.Decision.Eager) return null;
        if (evict is not null && graphs.Remove(evict, out var old)) { old.Graph.Dispose(); old.Input.Dispose(); }
        if (decision == GraphSlots.Decision.Capture)
            try { graphs[key] = Capture(images); }
            catch { slots.Forget(key); throw; }
        var entry = graphs[key];
        entry.Input.copy_(images);
        entry.Graph.Replay();
        var o = entry.Graph.Outputs;
        // views of the graph's outputs: valid until the next replay
        if (o.Length == 5) return new NmsResult(o[0].alias(), o[1].alias(), o[2].alias(), o[3].alias(), o[4].alias());
        if (o.Length > 4 && o[9].item<bool>()) return new NmsResult(o[4].alias(), o[5].alias(), o[6].alias(),
            o[7].alias(), o[8].alias());
        using var c = new Candidates(o[0].alias(), o[1].alias(), o[2].alias(), o[3].alias());
        return Postprocess.Suppress(c, config, kernels);
    }

    (Tensor, CudaGraphs.CapturedGraph) Capture(Tensor images)
    {
        // Graph inputs and outputs live as long as the graph, not the caller's dispose scope.
        var input = images.clone().DetachFromDisposeScope(); // static input (NHWC strides kept by clone)
        var graph = CudaGraphs.Capture(deviceIndex, () =>
        {
            // Outputs, by count. 5: kept scores, boxes, classes, indices, count (our NMS kernels, exact, in the graph).
            // 4: candidates, suppressed eagerly after the replay. 10: candidates, then the tensor-op NMS's kept five
            // and its exactness flag (SuppressInGraph without our kernels).
            var c = candidates(input);
            Tensor[] outputs;
            if (kernels.Nms && NmsKernel.CanRun(c.Scores))
            {
                var kept = NmsKernel.Run(c.Scores, c.Boxes, c.Classes, c.Valid, config.NmsThreshold, config.Detections);
                outputs = [kept.Scores, kept.Boxes, kept.Classes, kept.Indices, kept.Count];
            }
            else
            {
                outputs = [c.Scores, c.Boxes, c.Classes, c.Valid];
                if (kernels.SuppressInGraph)
                {
                    var (kept, exact) = BatchedNms.RunWithoutHostWait(c.Scores, c.Boxes, c.Classes, c.Valid,
                        config.NmsThreshold, config.Detections);
                    outputs = [.. outputs, kept.Scores, kept.Boxes, kept.Classes, kept.Indices, kept.Count, exact];
                }
            }
            foreach (var t in outputs) t.DetachFromDisposeScope();
            return outputs;
        }, pool: pool, stream: stream);
        return (input, graph);
    }

    public void Dispose()
    {
        foreach (var (input, graph) in graphs.Values) { graph.Dispose(); input.Dispose(); }
        graphs.Clear();
    }
}
