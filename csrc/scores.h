/*
 * Built-in scores, evaluated inside the step loop on one block of rows.
 *
 * Each is the exact score of the marginal p_t of known data pushed through
 * x_t = m x_0 + s z, with (m, s) taken from the step table's columns.
 *
 *   linear     data N(mu, diag(var0)):
 *              score(x) = (m mu - x) / (m^2 var0 + s^2), elementwise, with
 *              mean_j = m mu_j and var_j = m^2 var0_j + s^2 formed in double
 *              and rounded once to the element type, then the element type's
 *              arithmetic (the tests' NumPy twin repeats it bit for bit).
 *   mixture    data sum_k w_k N(mu_k, Sigma_k), Sigma_k = U_k diag(lambda_k) U_k^T
 *              (U_k = I for isotropic/diagonal covariances): with
 *              c_kj = m^2 lambda_kj + s^2 and y_k = U_k^T (x - m mu_k),
 *                  l_k = log w_k - 1/2 sum_j [log(2 pi c_kj) + y_kj^2 / c_kj]
 *                  score(x) = -sum_k softmax(l)_k U_k (y_k / c_k)
 *              in double, log-sum-exp stable, O(K d) per row. Full covariances
 *              up to d = 32 use the precision matrices P_k = U_k diag(1/c_k) U_k^T
 *              (formed per evaluation, K d^3): v_k = P_k (m mu_k - x), quad_k =
 *              (m mu_k - x) . v_k, score = sum_k softmax(l)_k v_k, d^2 per row
 *              and component, vectorized over rows like the diagonal kernel;
 *              larger ones rotate each row, 2 d^2 per row and component.
 *   empirical  data = n points y_i with equal weights, smoothed by the kernel:
 *                  score(x) = sum_i softmax_i(-|x - m y_i|^2 / (2 s^2)) (m y_i - x) / s^2
 *              in double, groups of rows against blocks of points with a
 *              running log-sum-exp, the distances expanded around the data's
 *              centre (csrc/empirical_kernel.h); needs s > 0.
 */
#ifndef DIFFSDE_SCORES_H
#define DIFFSDE_SCORES_H

#include "parallel.h"

#include <stdint.h>

enum dsde_score_kind {
    DSDE_SCORE_NONE = 0,
    DSDE_SCORE_LINEAR = 1,
    DSDE_SCORE_PYTHON = 2,
    DSDE_SCORE_MIXTURE = 3,
    DSDE_SCORE_EMPIRICAL = 4
};

typedef struct {
    int kind;
    int64_t dim;
    /* linear */
    const double *mu;           /* (dim,) */
    const double *var0;         /* (dim,) */
    /* mixture */
    int64_t n_components;
    const double *log_weights;  /* (K,) */
    const double *means;        /* (K, dim) */
    const double *lambdas;      /* (K, dim): covariance eigenvalues (or diagonal) */
    const double *vectors;      /* (K, dim, dim) eigenvectors as columns, or NULL */
    const double *uniform;      /* (K,): 1 where all lambdas of component k are equal, else 0 */
    /* empirical */
    int64_t n_points;
    const double *points;       /* (n, dim), centred: y_i - center */
    const double *points_t;     /* (ceil(n / 8), dim, 8): the same, 8 to a block, transposed */
    const double *sq_norms;     /* (8 ceil(n / 8),): |y_i - center|^2, +inf past n */
    const double *center;       /* (dim,) */
} dsde_builtin_score;

/* Doubles of per-thread workspace a block of `rows` rows needs. */
int64_t dsde_score_work_size(const dsde_builtin_score *sc, int64_t rows);

/* out = score(x) for `rows` rows of `dim` elements. Long evaluations poll
 * `pool` (Ctrl-C) and return early when the run is stopping. */
void dsde_score_f64(const dsde_builtin_score *sc, double m, double s, const double *x,
                    int64_t rows, double *out, double *work, dsde_pool *pool, int master);
void dsde_score_f32(const dsde_builtin_score *sc, double m, double s, const float *x,
                    int64_t rows, float *out, double *work, dsde_pool *pool, int master);

#endif
