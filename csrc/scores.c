#include "scores.h"
#include <math.h>
#include <string.h>

#include "simd.h"

#define LOG_2PI 1.8378770664093454835606594728112

/* Partial sums of the empirical weights per row (csrc/empirical_kernel.h). */
#define DSDE_EMP_LANES_TOTAL 8

/* Full covariances of up to this dimension go through the precision
 * matrices and the tile kernel (d^2 per row and component, plus K d^3 per
 * evaluation to form them); larger ones stay with the row kernel (2 d^2 per
 * row and component, nothing per evaluation), where forming the matrices
 * would cost more than it saves at the driver's blocks of 4096 / d rows. */
#define FULL_TILE_MAX_DIM 32

/* Rows of the mixture tile for a block of `rows` rows. */
static int64_t
tile_width(int64_t rows)
{
    /* below a vector of rows, one row at a time (vectorized over d): a
     * row's bits depend on neither choice */
    return rows < DSDE_TILE ? (rows >= 8 ? rows : 1) : DSDE_TILE;
}

int64_t
dsde_score_work_size(const dsde_builtin_score *sc, int64_t rows)
{
    const int64_t d = sc->dim, K = sc->n_components, W = tile_width(rows);
    switch (sc->kind) {
    case DSDE_SCORE_LINEAR:
        return 2 * d;
    case DSDE_SCORE_MIXTURE:
        /* 1/c and m mu (K d each), log-normalizers (K); then either a tile's
         * rows and scores transposed (d W each) and its scratch ((K + 2) W)
         * (for one row, W = 1, no m mu: the row kernel forms it),
         * or, full covariances up to FULL_TILE_MAX_DIM, the precision
         * matrices (K d^2), the same transposed tile and the full kernel's
         * scratch ((K + 2 + d + K d) W), or, above, the per-component scores
         * of one row (K d), its logits (K) and x, y, g (d each) */
        if (sc->vectors == NULL && W == 1) /* the row kernel: 1/c only */
            return K * d + K + 2 * d + K + 2;
        if (sc->vectors == NULL)
            return 2 * K * d + K + (2 * d + K + 2) * W;
        if (d <= FULL_TILE_MAX_DIM)
            return 2 * K * d + K + K * d * d + (3 * d + K + 2 + K * d) * W;
        return 3 * K * d + 2 * K + 3 * d;
    case DSDE_SCORE_EMPIRICAL:
        /* a group of rows widened to double and their scores (d each), and
         * the kernel's running sums, centred rows and logits */
        return DSDE_EMP_ROWS * (4 * d + DSDE_EMP_POINTS + DSDE_EMP_LANES_TOTAL) +
               DSDE_EMP_POINTS; /* and the indices of a pass's live points */
    default:
        return 0;
    }
}

/* ---- linear --------------------------------------------------------------- */

#define DEFINE_SCORE_LINEAR(NAME, T)                                           \
    static void NAME(const dsde_builtin_score *sc, double m, double s,         \
                     const T *x, int64_t rows, T *out, double *work)           \
    {                                                                          \
        const int64_t dim = sc->dim;                                           \
        double *mean = work, *var = work + dim;                                \
        for (int64_t j = 0; j < dim; j++) {                                    \
            mean[j] = (T)(m * sc->mu[j]);                                      \
            var[j] = (T)(m * m * sc->var0[j] + s * s);                         \
        }                                                                      \
        for (int64_t row = 0; row < rows; row++) {                             \
            const T *xr = x + row * dim;                                       \
            T *orow = out + row * dim;                                         \
            for (int64_t j = 0; j < dim; j++)                                  \
                orow[j] = ((T)mean[j] - xr[j]) / (T)var[j];                    \
        }                                                                      \
    }

DEFINE_SCORE_LINEAR(score_linear_f64, double)
DEFINE_SCORE_LINEAR(score_linear_f32, float)

/* ---- mixture -------------------------------------------------------------- */

typedef struct {
    double *inv_c;    /* (K, d): 1 / (m^2 lambda + s^2) */
    double *mmu;      /* (K, d): m mu */
    double *lognorm;  /* (K,): log w - 1/2 sum log(2 pi c) */
    /* full covariances only: */
    double *logit;    /* (K,) */
    double *per;      /* (K, d): C_k^{-1} (m mu_k - x) of the current row */
    double *xd, *y, *g; /* (d,) each */
    double *end;      /* the rest of the workspace */
} mixture_work;

/* h + t + t + ... + t (n additions, each rounded to nearest): the bits of
 * that loop, in a few steps per binade of h. While h and t share a sign
 * and h stays inside its binade [2^(e-1), 2^e) (ulp u), every sum h + t
 * rounds to h + delta with delta the multiple of u nearest t (unique unless
 * t is a tie, then the loop's own step is taken), so k such additions are
 * one exact h + k delta; each binade boundary is crossed by one ordinary
 * addition. Anything unusual (signs differ, h tiny, t huge) takes the
 * ordinary step too. */
static double
repeat_add(double h, double t, int64_t n)
{
    while (n > 0) {
        if (h == 0.0 || (h > 0.0) != (t > 0.0) || !isfinite(h) || !isfinite(t) ||
            fabs(h) < 0x1p-900 || fabs(t) > 0x1p60) {
            h += t;
            n--;
            continue;
        }
        int e;
        frexp(h, &e); /* |h| in [2^(e-1), 2^e) */
        const double u = ldexp(1.0, e - 53);
        const double q = fabs(t) / u, fq = floor(q); /* exact: u is a power of 2 */
        if (q - fq == 0.5) { /* a tie: the rounding depends on h's last bit */
            h += t;
            n--;
            continue;
        }
        const double D = q - fq < 0.5 ? fq : fq + 1.0; /* delta = D u */
        if (D == 0.0) /* every remaining sum rounds back to h */
            return h;
        /* steps whose result stays at or below 2^e - u: there a sum is
         * below 2^e - u / 2, so its grid is still u */
        const double A = 0x1p53 - fabs(h) / u; /* (2^e - |h|) / u, an integer */
        double k = floor((A - 1.0) / D);
        if (k * D > A - 1.0)
            k -= 1.0;
        if (k > (double)n)
            k = (double)n;
        if (k >= 1.0) {
            const double step = (k * D) * u; /* exact: k D < 2^53 */
            h = h > 0.0 ? h + step : h - step;
            n -= (int64_t)k;
        }
        if (n > 0) {
            h += t;
            n--;
        }
    }
    return h;
}

static mixture_work
mixture_prepare(const dsde_builtin_score *sc, double m, double s, double *work,
                int coefficients)
{
    const int64_t d = sc->dim, K = sc->n_components;
    mixture_work w;
    w.inv_c = work;
    w.mmu = coefficients ? w.inv_c + K * d : NULL; /* the row kernel forms m mu itself */
    w.lognorm = w.inv_c + (coefficients ? 2 : 1) * K * d;
    w.end = w.lognorm + K;
    w.logit = w.per = w.xd = w.y = w.g = NULL;
    if (sc->vectors != NULL && d > FULL_TILE_MAX_DIM) {
        w.per = w.end;
        w.logit = w.per + K * d;
        w.xd = w.logit + K;
        w.y = w.xd + d;
        w.g = w.y + d;
        w.end = w.g + d;
    }
    if (coefficients)
        dsde_simd()->mixture_coefficients(K * d, m, s, sc->lambdas, sc->means, w.inv_c, w.mmu);
    /* half_logdet_k = sum_j 1/2 (log 2 pi + log c_kj), in j order for each
     * k. A component with one variance (sc->uniform) adds one term d times:
     * repeat_add gives that loop's bits in O(log d) steps. The others
     * advance their sums together (independent chains rather than one long
     * one, which at large d costs an add latency per element), and a
     * variance repeated from the previous coordinate reuses its log: the
     * same value, so the same bits, with one log per run instead of one per
     * coordinate */
    double *half_logdet = w.lognorm, *term = w.lognorm + K; /* the K doubles after it */
    int mixed = 0;
    for (int64_t k = 0; k < K; k++) {
        half_logdet[k] = 0.0;
        if (sc->uniform != NULL && sc->uniform[k] != 0.0)
            half_logdet[k] = repeat_add(0.0, 0.5 * (LOG_2PI + log(m * m * sc->lambdas[k * d] + s * s)), d);
        else
            mixed = 1;
    }
    for (int64_t j = 0; mixed && j < d; j++)
        for (int64_t k = 0; k < K; k++) {
            if (sc->uniform != NULL && sc->uniform[k] != 0.0)
                continue;
            if (j == 0 || !(sc->lambdas[k * d + j] == sc->lambdas[k * d + j - 1])) {
                double c = m * m * sc->lambdas[k * d + j] + s * s;
                term[k] = 0.5 * (LOG_2PI + log(c));
            }
            half_logdet[k] += term[k];
        }
    for (int64_t k = 0; k < K; k++)
        w.lognorm[k] = sc->log_weights[k] - half_logdet[k];
    return w;
}

/* P_k = U_k diag(1/c_k) U_k^T (K d^2 doubles at `prec`), each entry summed
 * over the eigenvalue index in order. */
static void
mixture_precisions(const dsde_builtin_score *sc, const mixture_work *w, double *prec)
{
    const int64_t d = sc->dim, K = sc->n_components;
    for (int64_t k = 0; k < K; k++) {
        const double *U = sc->vectors + k * d * d, *inv_c = w->inv_c + k * d;
        double *P = prec + k * d * d;
        for (int64_t i = 0; i < d; i++)
            for (int64_t j = 0; j < d; j++) {
                double acc = (U[i * d] * inv_c[0]) * U[j * d];
                for (int64_t l = 1; l < d; l++)
                    acc += (U[i * d + l] * inv_c[l]) * U[j * d + l];
                P[i * d + j] = acc;
            }
    }
}

/* per_k = C_k^{-1} (m mu_k - x) and its logit; y_k = U_k^T (m mu_k - x). */
static double
mixture_component(const dsde_builtin_score *sc, const mixture_work *w, int64_t k)
{
    const int64_t d = sc->dim;
    const double *mmu = w->mmu + k * d, *inv_c = w->inv_c + k * d;
    double *per = w->per + k * d;
    double quad = 0.0;
    if (sc->vectors == NULL) {
        for (int64_t j = 0; j < d; j++) {
            double diff = mmu[j] - w->xd[j];
            per[j] = diff * inv_c[j];
            quad += diff * per[j];
        }
    }
    else {
        const double *U = sc->vectors + k * d * d;
        for (int64_t i = 0; i < d; i++) {
            double yi = 0.0;
            for (int64_t j = 0; j < d; j++)
                yi += U[j * d + i] * (mmu[j] - w->xd[j]);
            w->y[i] = yi * inv_c[i];
            quad += yi * w->y[i];
        }
        for (int64_t j = 0; j < d; j++) {
            double pj = 0.0;
            for (int64_t i = 0; i < d; i++)
                pj += U[j * d + i] * w->y[i];
            per[j] = pj;
        }
    }
    return w->lognorm[k] - 0.5 * quad;
}

/* g = score at the row w.xd (all in double): the responsibilities softmax(l)
 * weigh the per-component scores, with the largest logit subtracted. */
static void
mixture_row(const dsde_builtin_score *sc, const mixture_work *w)
{
    const int64_t d = sc->dim, K = sc->n_components;
    double best = -INFINITY;
    for (int64_t k = 0; k < K; k++) {
        w->logit[k] = mixture_component(sc, w, k);
        if (w->logit[k] > best)
            best = w->logit[k];
    }
    double total = 0.0;
    for (int64_t j = 0; j < d; j++)
        w->g[j] = 0.0;
    for (int64_t k = 0; k < K; k++) {
        double weight = exp(w->logit[k] - best);
        total += weight;
        const double *per = w->per + k * d;
        for (int64_t j = 0; j < d; j++)
            w->g[j] += weight * per[j];
    }
    for (int64_t j = 0; j < d; j++)
        w->g[j] /= total;
}

/* ---- empirical data ------------------------------------------------------- */

typedef struct {
    dsde_pool *pool;
    int master;
} poll_target;

static int
poll_pool(void *arg)
{
    poll_target *t = arg;
    return dsde_poll(t->pool, t->master);
}

/* ---- dispatch ------------------------------------------------------------- */

/* A tile's rows in and out of the transposed layout (xT[j][r], zero past
 * the n real rows; out gets the n rows back rounded to T). A full tile at
 * d = 1 or 2 (the common toy data) takes loops of constant trip counts,
 * which compilers vectorize; the values moved are the same. */
#define DEFINE_TILE_MOVES(SFX, T)                                              \
    static void tile_in_##SFX(const T *x, int64_t d, int64_t W, int64_t n,     \
                              double *xT)                                      \
    {                                                                          \
        if (n == DSDE_TILE && W == DSDE_TILE && d == 2) {                      \
            for (int64_t r = 0; r < DSDE_TILE; r++) {                          \
                xT[r] = (double)x[2 * r];                                      \
                xT[DSDE_TILE + r] = (double)x[2 * r + 1];                      \
            }                                                                  \
            return;                                                            \
        }                                                                      \
        if (n == DSDE_TILE && W == DSDE_TILE && d == 1) {                      \
            for (int64_t r = 0; r < DSDE_TILE; r++)                            \
                xT[r] = (double)x[r];                                          \
            return;                                                            \
        }                                                                      \
        /* rows in the outer loop: each row read once, contiguously */      \
        for (int64_t r = 0; r < n; r++)                                        \
            for (int64_t j = 0; j < d; j++)                                    \
                xT[j * W + r] = (double)x[r * d + j];                          \
        for (int64_t j = 0; j < d; j++) /* a short tile's unused rows */       \
            for (int64_t r = n; r < W; r++)                                    \
                xT[j * W + r] = 0.0;                                           \
    }                                                                          \
    static void tile_out_##SFX(const double *gT, int64_t d, int64_t W,         \
                               int64_t n, T *out)                              \
    {                                                                          \
        if (n == DSDE_TILE && W == DSDE_TILE && d == 2) {                      \
            for (int64_t r = 0; r < DSDE_TILE; r++) {                          \
                out[2 * r] = (T)gT[r];                                         \
                out[2 * r + 1] = (T)gT[DSDE_TILE + r];                         \
            }                                                                  \
            return;                                                            \
        }                                                                      \
        if (n == DSDE_TILE && W == DSDE_TILE && d == 1) {                      \
            for (int64_t r = 0; r < DSDE_TILE; r++)                            \
                out[r] = (T)gT[r];                                             \
            return;                                                            \
        }                                                                      \
        for (int64_t r = 0; r < n; r++)                                        \
            for (int64_t j = 0; j < d; j++)                                    \
                out[r * d + j] = (T)gT[j * W + r];                             \
    }

DEFINE_TILE_MOVES(f64, double)
DEFINE_TILE_MOVES(f32, float)

/* Mixture and empirical scores compute in double: the row is widened, the
 * score rounded once to the element type. */
#define DEFINE_SCORE(NAME, T, LINEAR, SFX)                                     \
    void NAME(const dsde_builtin_score *sc, double m, double s, const T *x,    \
              int64_t rows, T *out, double *work, dsde_pool *pool, int master) \
    {                                                                          \
        const int64_t d = sc->dim;                                             \
        if (sc->kind == DSDE_SCORE_LINEAR) {                                   \
            LINEAR(sc, m, s, x, rows, out, work);                              \
        }                                                                      \
        else if (sc->kind == DSDE_SCORE_MIXTURE &&                            \
                 (sc->vectors == NULL || d <= FULL_TILE_MAX_DIM)) {            \
            const int64_t W = tile_width(rows);                                \
            const int row_kernel = W == 1 && sc->vectors == NULL;              \
            mixture_work w = mixture_prepare(sc, m, s, work, !row_kernel);     \
            const double *coef = w.inv_c;                                      \
            dsde_mixture_tile_fn tile = dsde_simd()->mixture_tile;             \
            if (sc->vectors != NULL) {                                         \
                mixture_precisions(sc, &w, w.end);                             \
                coef = w.end;                                                  \
                w.end += sc->n_components * d * d;                             \
                tile = dsde_simd()->mixture_full_tile;                         \
            }                                                                  \
            double *xT = w.end, *gT = xT + d * W, *scratch = gT + d * W;       \
            dsde_mix_row_args ra = {sc->n_components, d, m, s, sc->means,      \
                                    sc->lambdas, sc->uniform, w.lognorm};      \
            for (int64_t r0 = 0; r0 < rows; r0 += W) {                         \
                int64_t n = rows - r0 < W ? rows - r0 : W;                     \
                tile_in_##SFX(x + r0 * d, d, W, n, xT);                        \
                if (row_kernel) /* 1/c goes to w.inv_c, m mu is not stored */   \
                    dsde_simd()->mixture_row(&ra, xT, gT, w.inv_c, scratch);   \
                else                                                           \
                    tile(sc->n_components, d, W, coef, w.mmu, w.lognorm, xT,   \
                         gT, scratch);                                         \
                tile_out_##SFX(gT, d, W, n, out + r0 * d);                     \
                if (dsde_poll(pool, master))                                   \
                    return;                                                    \
            }                                                                  \
        }                                                                      \
        else if (sc->kind == DSDE_SCORE_MIXTURE) {                             \
            mixture_work w = mixture_prepare(sc, m, s, work, 1);               \
            for (int64_t r = 0; r < rows; r++) {                               \
                for (int64_t j = 0; j < d; j++)                                \
                    w.xd[j] = (double)x[r * d + j];                            \
                mixture_row(sc, &w);                                           \
                for (int64_t j = 0; j < d; j++)                                \
                    out[r * d + j] = (T)w.g[j];                                \
                if ((r & 255) == 255 && dsde_poll(pool, master))               \
                    return;                                                    \
            }                                                                  \
        }                                                                      \
        else if (sc->kind == DSDE_SCORE_EMPIRICAL) {                           \
            const int64_t R = DSDE_EMP_ROWS;                                   \
            double *xd = work, *g = xd + R * d, *kwork = g + R * d;            \
            poll_target target = {pool, master};                               \
            dsde_emp_args a = {sc->n_points, d, m, s, sc->points, sc->points_t, \
                               sc->sq_norms, sc->center, poll_pool, &target};  \
            const dsde_empirical_rows_fn group = dsde_simd()->empirical_rows;  \
            for (int64_t r0 = 0; r0 < rows; r0 += R) {                         \
                int64_t n = rows - r0 < R ? rows - r0 : R;                     \
                for (int64_t i = 0; i < n * d; i++)                            \
                    xd[i] = (double)x[r0 * d + i];                             \
                group(&a, xd, n, g, kwork);                                    \
                if (dsde_poll(pool, master))                                   \
                    return;                                                    \
                for (int64_t i = 0; i < n * d; i++)                            \
                    out[r0 * d + i] = (T)g[i];                                 \
            }                                                                  \
        }                                                                      \
    }

DEFINE_SCORE(dsde_score_f64, double, score_linear_f64, f64)
DEFINE_SCORE(dsde_score_f32, float, score_linear_f32, f32)
