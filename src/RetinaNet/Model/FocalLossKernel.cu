
// Element (b, a*C + c, y, x) of a level: anchor offset + (a*H + y)*W + x of image b, target 1 where that anchor's
// label is c + 1, ignored where the label is negative.
#define FOCAL_KERNEL(NAME, LOAD, STORE)                                                                             \
extern "C" __global__ void focal_loss_##NAME(const void* x, void* grad, const long long* labels, unsigned per_image,\
                                             int nhwc, int classes, int height, int width, long long offset,        \
                                             long long anchors, float alpha, float gamma, float* partial)           \
{                                                                                                                   \
    LEVEL_LOSS_LOOP(STORE,                                                                                          \
        unsigned a = ch / classes, c = ch % classes;                                                                \
        long long label = labels[b * anchors + offset + (unsigned long long)a * hw + pixel];                        \
        if (label >= 0)                                                                                             \
        {                                                                                                           \
            float v = LOAD(x, base + r), p = 1.0f / (1.0f + expf(-v));                                              \
            float sp = fmaxf(v, 0.0f) + log1pf(expf(-fabsf(v)));  /* softplus(v) = BCE against 0 */                 \
            if (label == (long long)c + 1)                                                                          \
            {                                                                                                       \
                float q = 1.0f - p, spn = sp - v;                 /* softplus(-v) = BCE against 1 */                \
                float w = alpha * powf(q, gamma);                                                                   \
                loss = w * spn;                                                                                     \
                g = -w * (gamma * p * spn + q);                                                                     \
            }                                                                                                       \
            else                                                                                                    \
            {                                                                                                       \
                float w = (1.0f - alpha) * powf(p, gamma);                                                          \
                loss = w * sp;                                                                                      \
                g = w * (gamma * (1.0f - p) * sp + p);                                                              \
            }                                                                                                       \
        })                                                                                                          \
}

EACH_VALUE_TYPE(FOCAL_KERNEL)