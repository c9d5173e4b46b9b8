// IoU of every (a, b) pair of rotated boxes (corners [N, 8] and [M, 8], float32): one thread per pair, out [N, M].
extern "C" __global__ void rotated_iou_pairwise(const float* a, const float* b, long long n, long long m, float* out)
{
    long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= n * m) return;
    long long i = k / m, j = k - i * m;
    out[k] = (float)rotated_iou(a + i * 8, b + j * 8);
}
