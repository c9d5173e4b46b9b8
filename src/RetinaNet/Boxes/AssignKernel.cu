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