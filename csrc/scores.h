/*
 * Built-in scores, evaluated inside the step loop on one block of rows.
 *
 * Each is the exact score of the marginal p_t of a data distribution pushed
 * through x_t = m x_0 + s z, with (m, s) taken from the step table.
 *
 *   linear   data N(mu, diag(var0)):
 *            score(x) = (m mu - x) / (m^2 var0 + s^2), elementwise
 *            with mean_j = m mu_j and var_j = m^2 var0_j + s^2 formed in
 *            double and rounded once to the element type.
 */
#ifndef DIFFSDE_SCORES_H
#define DIFFSDE_SCORES_H

#include <stdint.h>

enum dsde_score_kind {
    DSDE_SCORE_NONE = 0,
    DSDE_SCORE_LINEAR = 1,
    DSDE_SCORE_PYTHON = 2
};

typedef struct {
    int kind;
    int64_t dim;
    const double *mu;   /* linear: (dim,) */
    const double *var0; /* linear: (dim,) */
} dsde_builtin_score;

/* out = score(x) for `rows` rows of `dim`; `work` holds 2 * dim elements. */
void dsde_score_linear_f64(const dsde_builtin_score *sc, double m, double s,
                           const double *x, int64_t rows, double *out,
                           double *work);
void dsde_score_linear_f32(const dsde_builtin_score *sc, double m, double s,
                           const float *x, int64_t rows, float *out,
                           float *work);

/* Elements of `work` (per thread) the built-in score needs. */
int64_t dsde_score_work_size(const dsde_builtin_score *sc);

#endif
