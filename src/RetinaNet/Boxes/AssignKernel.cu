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
// TargetAssigner.AssignRotated's matching: a thread per (image, anchor) walks that image's boxes once with the exact
// rotated IoU (as rotated_iou_pairwise: in double, then float), keeping the best IoU with an object (ties: the lower
// box index) and the largest cover of the anchor by a crowd region (its intersection, from the IoU as the tensor ops
// compute it, over the anchor's area); writes the label and the matched box's index. The deltas stay tensor ops.
extern "C" __global__ void assign_targets_rotated(const float* anchor_corners, const float* anchor_areas,
                                                  const float* box_corners, const float* box_areas,
                                                  const float* classes, long long n, int m, float background,
                                                  float foreground, float crowd_ioa, float crowd, long long* labels,
                                                  long long* matches)
{
    extern __shared__ float boxes[]; // per box: 8 corners, area, class
    int b = blockIdx.y;
    for (int j = threadIdx.x; j < m; j += blockDim.x)
    {
        unsigned long long at = (unsigned long long)b * m + j;
        for (int e = 0; e < 8; e++) boxes[j * 10 + e] = box_corners[at * 8 + e];
        boxes[j * 10 + 8] = box_areas[at];
        boxes[j * 10 + 9] = classes[at];
    }
    __syncthreads();
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    float a[8];
    for (int e = 0; e < 8; e++) a[e] = anchor_corners[i * 8 + e];
    float area = anchor_areas[i], best = -1.0f, cover = 0.0f;
    int match = 0;
    for (int j = 0; j < m; j++)
    {
        const float* q = boxes + j * 10;
        float cls = q[9];
        if (cls < 0.0f && cls != crowd) continue;
        float iou = (float)rotated_iou(a, q);
        if (cls >= 0.0f)
        {
            if (iou > best) { best = iou; match = j; } // strict: ties keep the lower box index
        }
        else cover = fmaxf(cover, ((iou * (area + q[8])) / (iou + 1.0f)) / area);
    }
    unsigned long long o = (unsigned long long)b * n + i;
    long long label = best >= foreground ? (long long)boxes[match * 10 + 9] + 1 : best < background ? 0 : -1;
    if (label == 0 && cover >= crowd_ioa) label = -1;
    labels[o] = label;
    matches[o] = match;
}
