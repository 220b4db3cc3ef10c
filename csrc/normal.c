#include <math.h>
#include "normal.h"

static const double TWO_PI = 6.283185307179586476925286766559;

void
dsde_box_muller_f64(const uint32_t w[4], double z[2])
{
    uint64_t a = ((((uint64_t)w[1]) << 32) | w[0]) >> 11;
    uint64_t b = ((((uint64_t)w[3]) << 32) | w[2]) >> 11;
    double u1 = ((double)a + 1.0) * 0x1p-53;
    double u2 = (double)b * 0x1p-53;
    double r = sqrt(-2.0 * log(u1));
    double theta = TWO_PI * u2;
    z[0] = r * cos(theta);
    z[1] = r * sin(theta);
}

void
dsde_box_muller_f32(const uint32_t w[4], float z[4])
{
    for (int pair = 0; pair < 2; pair++) {
        double u1 = ((double)w[2 * pair] + 1.0) * 0x1p-32;
        double u2 = (double)w[2 * pair + 1] * 0x1p-32;
        double r = sqrt(-2.0 * log(u1));
        double theta = TWO_PI * u2;
        z[2 * pair] = (float)(r * cos(theta));
        z[2 * pair + 1] = (float)(r * sin(theta));
    }
}

/* The two fill functions differ only in element type and block width. */
#define DEFINE_NORMAL_FILL(NAME, T, PER_BLOCK, TRANSFORM)                      \
    void NAME(dsde_philox_key key, uint32_t stream, uint32_t k, uint64_t j0,   \
              int64_t n, T *out)                                               \
    {                                                                          \
        uint64_t block = j0 / PER_BLOCK;                                       \
        int first = (int)(j0 % PER_BLOCK);                                     \
        int64_t i = 0;                                                         \
        T z[PER_BLOCK];                                                        \
        while (i < n) {                                                        \
            dsde_philox_ctr w =                                                \
                dsde_philox4x32_10(dsde_counter(block, k, stream), key);       \
            TRANSFORM(w.v, z);                                                 \
            for (int e = first; e < PER_BLOCK && i < n; e++) {                 \
                out[i++] = z[e];                                               \
            }                                                                  \
            first = 0;                                                         \
            block++;                                                           \
        }                                                                      \
    }

DEFINE_NORMAL_FILL(dsde_normal_fill_f64, double, DSDE_NORMALS_PER_BLOCK_F64,
                   dsde_box_muller_f64)
DEFINE_NORMAL_FILL(dsde_normal_fill_f32, float, DSDE_NORMALS_PER_BLOCK_F32,
                   dsde_box_muller_f32)
