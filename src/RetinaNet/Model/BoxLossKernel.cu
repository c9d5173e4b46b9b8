
// Element (b, a*V + k, y, x) of a level (V values an anchor: 4, or 6 for rotated boxes): anchor offset + (a*H + y)*W
// + x of image b, target delta k of that anchor.
#define BOX_KERNEL(NAME, LOAD, STORE)                                                                               \
extern "C" __global__ void box_loss_##NAME(const void* x, void* grad, const long long* labels, const float* targets,\
                                           unsigned per_image, int nhwc, int height, int width, long long offset,   \
                                           long long anchors, int values, float beta, float* partial)               \
{                                                                                                                   \
    LEVEL_LOSS_LOOP(STORE,                                                                                          \
        unsigned long long anchor = b * anchors + offset + (unsigned long long)(ch / values) * hw + pixel;          \
        if (labels[anchor] > 0)                                                                                     \
        {                                                                                                           \
            float d = LOAD(x, base + r) - targets[anchor * values + ch % values], ad = fabsf(d);                    \
            if (ad >= beta) { loss = ad - 0.5f * beta; g = d > 0.0f ? 1.0f : -1.0f; }                               \
            else { loss = 0.5f * (ad * ad) / beta; g = d / beta; }                                                  \
        })                                                                                                          \
}

EACH_VALUE_TYPE(BOX_KERNEL)