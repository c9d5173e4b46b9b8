extern "C" __global__ void nms_overlap_bits(const float* boxes, const long long* classes, const long long* valid_count,
                                            int k, int words, float threshold, unsigned long long* bits)
{
    int col_block = blockIdx.x, row_block = blockIdx.y, b = blockIdx.z, t = threadIdx.x;
    if (col_block < row_block) return; // the walk reads only words at or right of a row's own
    long long n = valid_count[b];
    int row_start = row_block * 64, col_start = col_block * 64;
    if (row_start >= n || col_start >= n) return;
    __shared__ float cb[64][4];
    __shared__ long long cc[64];
    const float* bb = boxes + (long long)b * k * 4;
    if (col_start + t < n)
    {
        for (int j = 0; j < 4; j++) cb[t][j] = bb[(long long)(col_start + t) * 4 + j];
        cc[t] = classes[(long long)b * k + col_start + t];
    }
    __syncthreads();
    int i = row_start + t;
    if (i >= n) return;
    float x1 = bb[(long long)i * 4], y1 = bb[(long long)i * 4 + 1], x2 = bb[(long long)i * 4 + 2], y2 = bb[(long long)i * 4 + 3];
    long long c = classes[(long long)b * k + i];
    float area = (x2 - x1 + 1) * (y2 - y1 + 1);
    unsigned long long word = 0;
    int cols = (int)min((long long)64, n - col_start);
    for (int j = col_block == row_block ? t + 1 : 0; j < cols; j++)
    {
        if (cc[j] != c) continue;
        float iw = fmaxf(fminf(x2, cb[j][2]) - fmaxf(x1, cb[j][0]) + 1, 0.0f);
        float ih = fmaxf(fminf(y2, cb[j][3]) - fmaxf(y1, cb[j][1]) + 1, 0.0f);
        float inter = iw * ih;
        float other = (cb[j][2] - cb[j][0] + 1) * (cb[j][3] - cb[j][1] + 1);
        if (inter / (area + other - inter) > threshold) word |= 1ull << j;
    }
    bits[((long long)b * k + i) * words + col_block] = word;
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

// nms_overlap_bits for rotated boxes: corners [k, 8] per image, exact IoU (RotatedIou.cuh) in double.
extern "C" __global__ void nms_overlap_bits_rotated(const float* boxes, const long long* classes,
                                                    const long long* valid_count, int k, int words, double threshold,
                                                    unsigned long long* bits)
{
    int col_block = blockIdx.x, row_block = blockIdx.y, b = blockIdx.z, t = threadIdx.x;
    if (col_block < row_block) return;
    long long n = valid_count[b];
    int row_start = row_block * 64, col_start = col_block * 64;
    if (row_start >= n || col_start >= n) return;
    __shared__ float cb[64][8];
    __shared__ long long cc[64];
    const float* bb = boxes + (long long)b * k * 8;
    if (col_start + t < n)
    {
        for (int j = 0; j < 8; j++) cb[t][j] = bb[(long long)(col_start + t) * 8 + j];
        cc[t] = classes[(long long)b * k + col_start + t];
    }
    __syncthreads();
    int i = row_start + t;
    if (i >= n) return;
    float mine[8];
    for (int j = 0; j < 8; j++) mine[j] = bb[(long long)i * 8 + j];
    long long c = classes[(long long)b * k + i];
    unsigned long long word = 0;
    int cols = (int)min((long long)64, n - col_start);
    for (int j = col_block == row_block ? t + 1 : 0; j < cols; j++)
        if (cc[j] == c && rotated_iou(mine, cb[j]) > threshold) word |= 1ull << j;
    bits[((long long)b * k + i) * words + col_block] = word;
}
