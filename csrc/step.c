#include <stddef.h>
#include <math.h>
#include "step.h"

/* heun_predict is an affine step into another buffer: the driver copies x
 * into the scratch buffer and calls the affine kernel there. */

#define DEFINE_AFFINE(NAME, T)                                                 \
    void NAME(T *x, const T *s, const T *z, int64_t n, double a, double b,    \
              double c)                                                        \
    {                                                                          \
        const T ta = (T)a, tb = (T)b, tc = (T)c;                               \
        if (s != NULL && z != NULL) {                                          \
            for (int64_t i = 0; i < n; i++)                                    \
                x[i] = ta * x[i] + tb * s[i] + tc * z[i];                      \
        }                                                                      \
        else if (s != NULL) {                                                  \
            for (int64_t i = 0; i < n; i++)                                    \
                x[i] = ta * x[i] + tb * s[i];                                  \
        }                                                                      \
        else if (z != NULL) {                                                  \
            for (int64_t i = 0; i < n; i++)                                    \
                x[i] = ta * x[i] + tc * z[i];                                  \
        }                                                                      \
        else {                                                                 \
            for (int64_t i = 0; i < n; i++)                                    \
                x[i] = ta * x[i];                                              \
        }                                                                      \
    }

DEFINE_AFFINE(dsde_affine_f64, double)
DEFINE_AFFINE(dsde_affine_f32, float)

#define DEFINE_HEUN_CORRECT(NAME, T)                                           \
    void NAME(T *x, const T *xt, const T *s, int64_t n, double a, double b)   \
    {                                                                          \
        const T ta = (T)a, tb = (T)b, half = (T)0.5;                           \
        if (s != NULL) {                                                       \
            for (int64_t i = 0; i < n; i++)                                    \
                x[i] = half * x[i] + half * (ta * xt[i] + tb * s[i]);          \
        }                                                                      \
        else {                                                                 \
            for (int64_t i = 0; i < n; i++)                                    \
                x[i] = half * x[i] + half * (ta * xt[i]);                      \
        }                                                                      \
    }

DEFINE_HEUN_CORRECT(dsde_heun_correct_f64, double)
DEFINE_HEUN_CORRECT(dsde_heun_correct_f32, float)

#define DEFINE_LANGEVIN(NAME, T)                                               \
    void NAME(T *x, const T *s, const T *z, int64_t rows, int64_t dim,        \
              double r, double snr)                                            \
    {                                                                          \
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
            for (int64_t i = 0; i < dim; i++)                                  \
                xr[i] = xr[i] + te * sr[i] + tsd * zr[i];                      \
        }                                                                      \
    }

DEFINE_LANGEVIN(dsde_langevin_f64, double)
DEFINE_LANGEVIN(dsde_langevin_f32, float)

#define DEFINE_FIRST_NONFINITE(NAME, T)                                        \
    int64_t NAME(const T *x, int64_t n)                                        \
    {                                                                          \
        for (int64_t i = 0; i < n; i++)                                        \
            if (!isfinite(x[i]))                                               \
                return i;                                                      \
        return -1;                                                             \
    }

DEFINE_FIRST_NONFINITE(dsde_first_nonfinite_f64, double)
DEFINE_FIRST_NONFINITE(dsde_first_nonfinite_f32, float)
