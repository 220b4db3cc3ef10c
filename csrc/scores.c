#include "scores.h"

#define DEFINE_SCORE_LINEAR(NAME, T)                                           \
    void NAME(const dsde_builtin_score *sc, double m, double s, const T *x,   \
              int64_t rows, T *out, T *work)                                   \
    {                                                                          \
        const int64_t dim = sc->dim;                                           \
        T *mean = work, *var = work + dim;                                     \
        for (int64_t j = 0; j < dim; j++) {                                    \
            mean[j] = (T)(m * sc->mu[j]);                                      \
            var[j] = (T)(m * m * sc->var0[j] + s * s);                         \
        }                                                                      \
        for (int64_t row = 0; row < rows; row++) {                             \
            const T *xr = x + row * dim;                                       \
            T *orow = out + row * dim;                                         \
            for (int64_t j = 0; j < dim; j++)                                  \
                orow[j] = (mean[j] - xr[j]) / var[j];                          \
        }                                                                      \
    }

DEFINE_SCORE_LINEAR(dsde_score_linear_f64, double)
DEFINE_SCORE_LINEAR(dsde_score_linear_f32, float)

int64_t
dsde_score_work_size(const dsde_builtin_score *sc)
{
    return sc->kind == DSDE_SCORE_LINEAR ? 2 * sc->dim : 0;
}
