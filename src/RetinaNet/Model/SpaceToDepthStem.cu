// The stem's NHWC input [B, H, W, 3] (16-bit values, H and W even) as 2×2 blocks: [B, H/2 + 3, W/2 + 3, 16], block
// (Y, X) channel (dy·2 + dx)·3 + c = x[2(Y − 2) + dy, 2(X − 2) + dx, c], zero outside the image (two blocks of padding
// before, one after) and in channels 12..15. One thread per block, two 16-byte stores.
extern "C" __global__ void space_to_depth16(const unsigned short* x, uint4* out, int height, int width,
                                            int out_height, int out_width, unsigned long long blocks)
{
    for (unsigned long long v = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; v < blocks;
         v += (unsigned long long)gridDim.x * blockDim.x)
    {
        int bx = (int)(v % out_width), by = (int)((v / out_width) % out_height);
        unsigned long long image = v / ((unsigned long long)out_width * out_height);
        unsigned short values[16];
        _Pragma("unroll")
        for (int j = 0; j < 16; j++) values[j] = 0;
        _Pragma("unroll")
        for (int dy = 0; dy < 2; dy++)
        {
            int y = 2 * (by - 2) + dy;
            _Pragma("unroll")
            for (int dx = 0; dx < 2; dx++)
            {
                int xx = 2 * (bx - 2) + dx;
                if (y < 0 || y >= height || xx < 0 || xx >= width) continue;
                const unsigned short* rgb = x + ((image * height + y) * width + xx) * 3;
                _Pragma("unroll")
                for (int c = 0; c < 3; c++) values[(dy * 2 + dx) * 3 + c] = rgb[c];
            }
        }
        const uint4* packed = (const uint4*)values;
        out[2 * v] = packed[0];
        out[2 * v + 1] = packed[1];
    }
}
