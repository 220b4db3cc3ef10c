#include "normal.h"
#include <math.h>
#include <string.h>

#include "fastmath.h"
#include "simd.h"

void
dsde_box_muller_f64(const uint32_t w[4], double z[2])
{
    uint64_t a = ((((uint64_t)w[1]) << 32) | w[0]) >> 11;
    uint64_t b = ((((uint64_t)w[3]) << 32) | w[2]) >> 11;
    double r = sqrt(-2.0 * dsde_log_scaled(a + 1, 53));
    double s, c;
    dsde_sincos_turns(b, 53, &s, &c);
    z[0] = r * c;
    z[1] = r * s;
}

void
dsde_box_muller_f32(const uint32_t w[4], float z[4])
{
    for (int pair = 0; pair < 2; pair++) {
        double r = sqrt(-2.0 * dsde_log_scaled((uint64_t)w[2 * pair] + 1, 32));
        double s, c;
        dsde_sincos_turns(w[2 * pair + 1], 32, &s, &c);
        z[2 * pair] = (float)(r * c);
        z[2 * pair + 1] = (float)(r * s);
    }
}

/* Whole blocks go straight to the vector loops; a partial first or last
 * block goes through a small buffer. */
#define DEFINE_NORMAL_FILL(NAME, T, PER_BLOCK, FIELD, FN)                      \
    void NAME(dsde_philox_key key, uint32_t stream, uint32_t k, uint64_t j0,   \
              int64_t n, T *out)                                               \
    {                                                                          \
        const FN blocks = dsde_simd()->FIELD;                                  \
        uint64_t block = j0 / PER_BLOCK;                                       \
        int64_t skip = (int64_t)(j0 % PER_BLOCK), i = 0;                       \
        T tmp[PER_BLOCK];                                                      \
        if (n <= 0)                                                            \
            return;                                                            \
        if (skip) {                                                            \
            blocks(key, stream, k, block++, 1, tmp);                           \
            for (int64_t e = skip; e < PER_BLOCK && i < n; e++)                \
                out[i++] = tmp[e];                                             \
        }                                                                      \
        int64_t whole = (n - i) / PER_BLOCK;                                   \
        blocks(key, stream, k, block, whole, out + i);                         \
        i += whole * PER_BLOCK;                                                \
        block += (uint64_t)whole;                                              \
        if (i < n) {                                                           \
            blocks(key, stream, k, block, 1, tmp);                             \
            for (int64_t e = 0; i < n; e++)                                    \
                out[i++] = tmp[e];                                             \
        }                                                                      \
    }

DEFINE_NORMAL_FILL(dsde_normal_fill_f64, double, DSDE_NORMALS_PER_BLOCK_F64, normal_f64,
                   dsde_normal_blocks_f64_fn)
DEFINE_NORMAL_FILL(dsde_normal_fill_f32, float, DSDE_NORMALS_PER_BLOCK_F32, normal_f32,
                   dsde_normal_blocks_f32_fn)
