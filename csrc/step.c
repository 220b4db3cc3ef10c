#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "step.h"

/* 1 when v is inf or NaN: its exponent bits are all ones. An integer test
 * the loops below fold into an OR, so the check costs no second pass. */
static inline uint64_t
nonfinite_f64(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return (bits & UINT64_C(0x7FF0000000000000)) == UINT64_C(0x7FF0000000000000);
}

static inline uint64_t
nonfinite_f32(float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    return (bits & UINT32_C(0x7F800000)) == UINT32_C(0x7F800000);
}

/* heun_predict is an affine step into another buffer: the driver copies x
 * into the scratch buffer and calls the affine kernel there. */

#define AFFINE_LOOP(T, EXPR, CHECK)                                            \
    for (int64_t i = 0; i < n; i++) {                                          \
        T v = EXPR;                                                            \
        x[i] = v;                                                              \
        bad |= CHECK(v);                                                       \
    }

#define DEFINE_AFFINE(NAME, T, CHECK)                                          \
    int NAME(T *x, const T *s, const T *z, int64_t n, double a, double b,     \
             double c)                                                         \
    {                                                                          \
        const T ta = (T)a, tb = (T)b, tc = (T)c;                               \
        uint64_t bad = 0;                                                      \
        if (s != NULL && z != NULL)                                            \
            AFFINE_LOOP(T, ta * x[i] + tb * s[i] + tc * z[i], CHECK)           \
        else if (s != NULL)                                                    \
            AFFINE_LOOP(T, ta * x[i] + tb * s[i], CHECK)                       \
        else if (z != NULL)                                                    \
            AFFINE_LOOP(T, ta * x[i] + tc * z[i], CHECK)                       \
        else                                                                   \
            AFFINE_LOOP(T, ta * x[i], CHECK)                                   \
        return bad != 0;                                                       \
    }

DEFINE_AFFINE(dsde_affine_f64, double, nonfinite_f64)
DEFINE_AFFINE(dsde_affine_f32, float, nonfinite_f32)

#define DEFINE_HEUN_CORRECT(NAME, T, CHECK)                                    \
    int NAME(T *x, const T *xt, const T *s, int64_t n, double a, double b)    \
    {                                                                          \
        const T ta = (T)a, tb = (T)b, half = (T)0.5;                           \
        uint64_t bad = 0;                                                      \
        if (s != NULL)                                                         \
            AFFINE_LOOP(T, half * x[i] + half * (ta * xt[i] + tb * s[i]), CHECK) \
        else                                                                   \
            AFFINE_LOOP(T, half * x[i] + half * (ta * xt[i]), CHECK)           \
        return bad != 0;                                                       \
    }

DEFINE_HEUN_CORRECT(dsde_heun_correct_f64, double, nonfinite_f64)
DEFINE_HEUN_CORRECT(dsde_heun_correct_f32, float, nonfinite_f32)

#define DEFINE_LANGEVIN(NAME, T, CHECK)                                        \
    int NAME(T *x, const T *s, const T *z, int64_t rows, int64_t dim,         \
             double r, double snr)                                             \
    {                                                                          \
        uint64_t bad = 0;                                                      \
        for (int64_t row = 0; row < rows; row++) {                             \
            T *xr = x + row * dim;                                             \
            const T *sr = s + row * dim, *zr = z + row * dim;                  \
            double zz = 0.0, ss = 0.0;                                         \
            for (int64_t i = 0; i < dim; i++) {                                \
                zz += (double)zr[i] * (double)zr[i];                           \
                ss += (double)sr[i] * (double)sr[i];                           \
            }                                                                  \
            /* |s| = 0 (the row sits at a mode): the step size has no finite \
             * value; the row stays put rather than become NaN. */         \
            double q = ss > 0.0 ? snr * sqrt(zz) / sqrt(ss) : 0.0;             \
            double eps = 2.0 * r * (q * q);                                    \
            const T te = (T)eps, tsd = (T)sqrt(2.0 * eps);                     \
            for (int64_t i = 0; i < dim; i++) {                                \
                T v = xr[i] + te * sr[i] + tsd * zr[i];                        \
                xr[i] = v;                                                     \
                bad |= CHECK(v);                                               \
            }                                                                  \
        }                                                                      \
        return bad != 0;                                                       \
    }

DEFINE_LANGEVIN(dsde_langevin_f64, double, nonfinite_f64)
DEFINE_LANGEVIN(dsde_langevin_f32, float, nonfinite_f32)
