// Overlap of candidates i and j: axis-aligned boxes (W = 4: inclusive corners, float32 as the tensor-op NMS
// computes it) or rotated boxes' corners (W = 8: the exact IoU's decision, RotatedIou.cuh).
template <int W> __device__ bool nms_overlaps(const float* a, const float* b, double threshold);

template <> __device__ bool nms_overlaps<4>(const float* a, const float* b, double threshold)
{
    float iw = fmaxf(fminf(a[2], b[2]) - fmaxf(a[0], b[0]) + 1, 0.0f);
    float ih = fmaxf(fminf(a[3], b[3]) - fmaxf(a[1], b[1]) + 1, 0.0f);
    float inter = iw * ih;
    float area = (a[2] - a[0] + 1) * (a[3] - a[1] + 1), other = (b[2] - b[0] + 1) * (b[3] - b[1] + 1);
    return inter / (area + other - inter) > (float)threshold;
}

template <> __device__ bool nms_overlaps<8>(const float* a, const float* b, double threshold)
{
    return rotated_iou_above(a, b, threshold);
}

// Axis-aligned extents of a candidate (for rotated corners: their bounding box), to skip the exact IoU of pairs
// that cannot overlap: most pairs, in a detector's spread of candidates.
template <int W> __device__ void nms_extent(const float* box, float* e)
{
    e[0] = box[0]; e[1] = box[1]; e[2] = box[0]; e[3] = box[1];
    for (int j = 2; j < W; j += 2)
    {
        e[0] = fminf(e[0], box[j]); e[1] = fminf(e[1], box[j + 1]);
        e[2] = fmaxf(e[2], box[j]); e[3] = fmaxf(e[3], box[j + 1]);
    }
}

// Whether two candidates' extents are apart, so their IoU is 0. Rotated corners only: axis-aligned boxes count in
// inclusive pixels (+1), and their IoU is as cheap as this test.
template <int W> __device__ bool nms_apart(const float* a, const float* b);
template <> __device__ bool nms_apart<4>(const float* a, const float* b) { return false; }
template <> __device__ bool nms_apart<8>(const float* a, const float* b)
{
    return a[2] < b[0] || b[2] < a[0] || a[3] < b[1] || b[3] < a[1];
}

// One 64 x 64 tile of the score-sorted candidates' overlap bits: thread t holds row i = row_block * 64 + t and sets
// bit j of its word when candidate col_block * 64 + j is of its class and overlaps it above the threshold.
template <int W> __device__ void nms_overlap_tile(const float* boxes, const long long* classes,
                                                  const long long* valid_count, int k, int words, double threshold,
                                                  unsigned long long* bits)
{
    int col_block = blockIdx.x, row_block = blockIdx.y, b = blockIdx.z, t = threadIdx.x;
    if (col_block < row_block) return; // the walk reads only words at or right of a row's own
    long long n = valid_count[b];
    int row_start = row_block * 64, col_start = col_block * 64;
    if (row_start >= n || col_start >= n) return;
    __shared__ float cb[64][W];
    __shared__ float ce[64][4];
    __shared__ long long cc[64];
    const float* bb = boxes + (long long)b * k * W;
    if (col_start + t < n)
    {
        for (int j = 0; j < W; j++) cb[t][j] = bb[(long long)(col_start + t) * W + j];
        nms_extent<W>(cb[t], ce[t]);
        cc[t] = classes[(long long)b * k + col_start + t];
    }
    __syncthreads();
    int i = row_start + t;
    if (i >= n) return;
    float mine[W], me[4];
    for (int j = 0; j < W; j++) mine[j] = bb[(long long)i * W + j];
    nms_extent<W>(mine, me);
    long long c = classes[(long long)b * k + i];
    // first the columns worth an IoU (same class, extents not apart), then their IoUs: a warp's threads then run
    // their few IoUs side by side instead of branching at each of the 64 columns
    unsigned long long candidates = 0, word = 0;
    int cols = (int)min((long long)64, n - col_start);
    for (int j = col_block == row_block ? t + 1 : 0; j < cols; j++)
        if (cc[j] == c && !nms_apart<W>(me, ce[j])) candidates |= 1ull << j;
    while (candidates)
    {
        int j = __ffsll((long long)candidates) - 1;
        candidates &= candidates - 1;
        if (nms_overlaps<W>(mine, cb[j], threshold)) word |= 1ull << j;
    }
    bits[((long long)b * k + i) * words + col_block] = word;
}

extern "C" __global__ void nms_overlap_bits(const float* boxes, const long long* classes, const long long* valid_count,
                                            int k, int words, double threshold, unsigned long long* bits)
{
    nms_overlap_tile<4>(boxes, classes, valid_count, k, words, threshold, bits);
}

extern "C" __global__ void nms_overlap_bits_rotated(const float* boxes, const long long* classes,
                                                    const long long* valid_count, int k, int words, double threshold,
                                                    unsigned long long* bits)
{
    nms_overlap_tile<8>(boxes, classes, valid_count, k, words, threshold, bits);
}

extern "C" __global__ void nms_walk(const unsigned long long* bits, const long long* valid_count, int k, int words,
                                    int max_detections, long long* keep, long long* count)
{
    extern __shared__ unsigned long long removed[];
    __shared__ unsigned long long diagonal[64];
    __shared__ unsigned long long kept_bits;
    __shared__ int kept;
    int b = blockIdx.x, t = threadIdx.x;
    long long n = valid_count[b];
    int used_words = (int)((n + 63) / 64);
    const unsigned long long* m = bits + (long long)b * k * words;
    long long* out = keep + (long long)b * max_detections;
    for (int w = t; w < used_words; w += blockDim.x) removed[w] = 0;
    if (t == 0) kept = 0;
    __syncthreads();
    for (int w = 0; w < used_words && kept < max_detections; w++)
    {
        int rows = (int)min((long long)64, n - (long long)w * 64);
        if (t < rows) diagonal[t] = m[(long long)(w * 64 + t) * words + w];
        __syncthreads();
        if (t == 0)
        {
            unsigned long long r = removed[w], kb = 0;
            int got = kept;
            for (int j = 0; j < rows && got < max_detections; j++)
                if (!((r >> j) & 1ull)) { kb |= 1ull << j; out[got++] = w * 64 + j; r |= diagonal[j]; }
            kept_bits = kb;
            kept = got;
        }
        __syncthreads();
        unsigned long long kb = kept_bits;
        for (int c = w + 1 + t; c < used_words && kept < max_detections; c += blockDim.x)
        {
            unsigned long long acc = removed[c];
            for (unsigned long long left = kb; left; left &= left - 1)
                acc |= m[(long long)(w * 64 + __ffsll((long long)left) - 1) * words + c];
            removed[c] = acc;
        }
        __syncthreads();
    }
    for (int d = kept + t; d < max_detections; d += blockDim.x) out[d] = -1;
    if (t == 0) count[b] = kept;
}

// Greedy NMS of each image's score-sorted rotated candidates against the list of those kept so far, one block an
// image: a candidate is kept when no kept box of its class overlaps it. Each candidate is tested against at most
// max_detections kept boxes (most screened out by their extents), where the overlap bits test every pair of the
// candidates; so for a short keep list (the detector's 100) this is the one to run. A chunk of blockDim candidates
// is first screened against the boxes kept before it, in parallel; then its survivors are kept in order, each kept
// one screening the rest of the chunk. Shared memory: max_detections x (8 corners + 4 extents) floats + classes.
extern "C" __global__ void nms_kept_list_rotated(const float* boxes, const long long* classes,
                                                 const long long* valid_count, int k, int max_detections,
                                                 double threshold, long long* keep, long long* count)
{
    extern __shared__ long long kept_classes[];
    float* kept_boxes = (float*)(kept_classes + max_detections);
    float* kept_extents = kept_boxes + (long long)max_detections * 8;
    __shared__ int kept;
    __shared__ int alive[1024];
    int b = blockIdx.x, t = threadIdx.x;
    long long n = valid_count[b];
    const float* bb = boxes + (long long)b * k * 8;
    const long long* cl = classes + (long long)b * k;
    long long* out = keep + (long long)b * max_detections;
    if (t == 0) kept = 0;
    __syncthreads();
    for (long long start = 0; start < n && kept < max_detections; start += blockDim.x)
    {
        long long i = start + t;
        float mine[8], me[4];
        long long c = -1;
        bool live = i < n;
        if (live)
        {
            for (int j = 0; j < 8; j++) mine[j] = bb[i * 8 + j];
            nms_extent<8>(mine, me);
            c = cl[i];
            for (int q = 0; q < kept && live; q++)
                if (kept_classes[q] == c && !nms_apart<8>(kept_extents + q * 4, me)
                    && nms_overlaps<8>(kept_boxes + q * 8, mine, threshold)) live = false;
        }
        alive[t] = live;
        __syncthreads();
        int chunk = (int)min((long long)blockDim.x, n - start);
        for (int j = 0; j < chunk && kept < max_detections; j++)
        {
            if (!alive[j]) continue; // alive[j] and kept are the same for every thread here
            int q = kept;
            if (t == j)
            {
                for (int e = 0; e < 8; e++) kept_boxes[q * 8 + e] = mine[e];
                for (int e = 0; e < 4; e++) kept_extents[q * 4 + e] = me[e];
                kept_classes[q] = c;
                out[q] = i;
            }
            __syncthreads();
            if (t > j && alive[t] && kept_classes[q] == c && !nms_apart<8>(kept_extents + q * 4, me)
                && nms_overlaps<8>(kept_boxes + q * 8, mine, threshold)) alive[t] = 0;
            __syncthreads();
            if (t == 0) kept = q + 1;
            __syncthreads();
        }
    }
    for (int d = kept + t; d < max_detections; d += blockDim.x) out[d] = -1;
    if (t == 0) count[b] = kept;
}
