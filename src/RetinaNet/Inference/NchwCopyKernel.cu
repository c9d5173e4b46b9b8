
// Channels-last 16-bit values [B, H, W, C] copied to NCHW [B, C, H, W]: per image the [HW, C] matrix transposed
// through 32×32 tiles in shared memory, so that both the reads (along C) and the writes (along HW) are coalesced.
// Blocks of 32×8 threads; grid (HW/32, C/32, B), rounded up.
extern "C" __global__ void nchw_copy16(const unsigned short* x, unsigned short* out, int channels, long long hw)
{
    __shared__ unsigned short tile[32][33];
    long long p0 = (long long)blockIdx.x * 32, image = blockIdx.z;
    int c0 = blockIdx.y * 32, tx = threadIdx.x, ty = threadIdx.y;
    const unsigned short* in = x + image * hw * channels;
    unsigned short* o = out + image * hw * channels;
    for (int j = ty; j < 32; j += 8)
    {
        long long p = p0 + j;
        int c = c0 + tx;
        if (p < hw && c < channels) tile[j][tx] = in[p * channels + c];
    }
    __syncthreads();
    for (int j = ty; j < 32; j += 8)
    {
        int c = c0 + j;
        long long p = p0 + tx;
        if (p < hw && c < channels) o[(long long)c * hw + p] = tile[tx][j];
    }
}
