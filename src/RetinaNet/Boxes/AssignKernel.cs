using RetinaNet.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Boxes;

/// <summary><see cref="TargetAssigner"/>'s matching as one kernel: a thread per (image, anchor) walks that image's
/// boxes (staged in shared memory) once, keeping the best IoU with an object, its first index and the largest
/// coverage by a crowd region, then writes the label and the encoded deltas. The tensor-op version makes ~25 passes
/// over a [B, N, M] IoU tensor (194 k anchors × 8 images × tens of boxes per training step). Same float32 arithmetic
/// in the same order as the tensor ops (compiled without FMA contraction), so labels match exactly.</summary>
public static class AssignKernel
{
    const int Threads = 256;
    /// <summary>Boxes per image that fit the kernel's shared memory (6 floats each); more take the tensor ops.</summary>
    public const int MaxBoxes = 2048;

    public static bool CanRun(Tensor anchors, Tensor targets) =>
        anchors.device_type == DeviceType.CUDA && targets.shape[1] is > 0 and <= MaxBoxes && CudaKernels.Available;

    static readonly string Source = """
        extern "C" __global__ void assign_targets(const float* anchors, const float* targets, long long n, int m,
                                                  float background, float foreground, float crowd_ioa, float crowd,
                                                  long long* labels, float* deltas)
        {
            extern __shared__ float boxes[]; // per box: x1, y1, x2, y2, area, class
            int b = blockIdx.y;
            const float* t = targets + (unsigned long long)b * m * 5;
            for (int j = threadIdx.x; j < m; j += blockDim.x)
            {
                float x1 = t[j * 5], y1 = t[j * 5 + 1];
                float x2 = (x1 + t[j * 5 + 2]) - 1.0f, y2 = (y1 + t[j * 5 + 3]) - 1.0f;
                boxes[j * 6] = x1; boxes[j * 6 + 1] = y1; boxes[j * 6 + 2] = x2; boxes[j * 6 + 3] = y2;
                boxes[j * 6 + 4] = ((x2 - x1) + 1.0f) * ((y2 - y1) + 1.0f);
                boxes[j * 6 + 5] = t[j * 5 + 4];
            }
            __syncthreads();
            long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
            if (i >= n) return;
            float ax1 = anchors[i * 4], ay1 = anchors[i * 4 + 1], ax2 = anchors[i * 4 + 2], ay2 = anchors[i * 4 + 3];
            float aw = (ax2 - ax1) + 1.0f, ah = (ay2 - ay1) + 1.0f, area = aw * ah;
            float best = -1.0f, cover = 0.0f;
            int match = 0;
            for (int j = 0; j < m; j++)
            {
                const float* q = boxes + j * 6;
                float cls = q[5];
                if (cls < 0.0f && cls != crowd) continue;
                float iw = fmaxf((fminf(ax2, q[2]) - fmaxf(ax1, q[0])) + 1.0f, 0.0f);
                float ih = fmaxf((fminf(ay2, q[3]) - fmaxf(ay1, q[1])) + 1.0f, 0.0f);
                float inter = iw * ih;
                if (cls >= 0.0f)
                {
                    float iou = inter / ((area + q[4]) - inter);
                    if (iou > best) { best = iou; match = j; }  // strict: ties keep the lower box index
                }
                else cover = fmaxf(cover, inter / area);
            }
            unsigned long long o = (unsigned long long)b * n + i;
            long long label = best >= foreground ? (long long)boxes[match * 6 + 5] + 1 : best < background ? 0 : -1;
            if (label == 0 && cover >= crowd_ioa) label = -1;
            labels[o] = label;
            float4 d = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (best >= foreground)
            {
                const float* q = boxes + match * 6;
                float bw = (q[2] - q[0]) + 1.0f, bh = (q[3] - q[1]) + 1.0f;
                d.x = ((q[0] + 0.5f * bw) - (ax1 + 0.5f * aw)) / aw;
                d.y = ((q[1] + 0.5f * bh) - (ay1 + 0.5f * ah)) / ah;
                d.z = logf(bw / aw);
                d.w = logf(bh / ah);
            }
            ((float4*)deltas)[o] = d;
        }
        """;

    /// <param name="anchors">[N, 4] float32 on the GPU.</param>
    /// <param name="targets">[B, M, 5] (x, y, w, h, class) as <see cref="TargetAssigner.Assign"/> takes them.</param>
    public static AnchorTargets Run(Tensor anchors, Tensor targets, double background, double foreground)
    {
        using var scope = NewDisposeScope();
        var a = anchors.to(ScalarType.Float32).contiguous();
        var t = targets.to(ScalarType.Float32).to(anchors.device).contiguous();
        long batch = t.shape[0], n = a.shape[0], m = t.shape[1];
        var labels = empty(batch, n, dtype: ScalarType.Int64, device: a.device);
        var deltas = empty(batch, n, 4, dtype: ScalarType.Float32, device: a.device);
        int device = a.device.index < 0 ? 0 : a.device.index;
        CudaKernels.Get(Source, "assign_targets", device).Launch(((int)((n + Threads - 1) / Threads), (int)batch), Threads, (int)(m * 6 * sizeof(float)),
            a, t, n, (int)m, (float)background, (float)foreground, (float)TargetAssigner.CrowdIoA, TargetAssigner.Crowd, labels, deltas);
        return new AnchorTargets(labels.MoveToOuterDisposeScope(), deltas.MoveToOuterDisposeScope());
    }
}
