/*
 * The Gaussian-mixture score (isotropic or diagonal covariances) for a tile
 * of up to DSDE_TILE rows at once, rows in the inner loops so that they
 * vectorize. Included by the per-instruction-set files (isa_*.c); see
 * scores.h for the formula. Inputs per step: inv_c = 1 / (m^2 lambda + s^2)
 * and mmu = m mu (K x d), lognorm = log w - 1/2 sum log(2 pi c) (K); the
 * tile's `width` rows come transposed (xT[j][r], r < width) and the scores
 * leave the same way (gT[j][r]). Every row is computed on its own, with the
 * same operations in the same order whatever the width or the vector length,
 * so a row's bits depend on neither.
 */
#include "fastmath.h"
#include "simd.h"

/* Weights e^v of a log-sum-exp with v below this are 0 in double: the clamp
 * only keeps the exponent arithmetic of dsde_exp_nonpositive in range. */
#define DSDE_EXP_FLOOR -750.0

#ifndef DSDE_ALWAYS_INLINE
#if defined(__GNUC__)
#define DSDE_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define DSDE_ALWAYS_INLINE inline
#endif
#endif

static DSDE_ALWAYS_INLINE void
DSDE_ISA_NAME(mixture_tile_body)(int64_t K, int64_t d, const int64_t W, const double *inv_c,
                                 const double *mmu, const double *lognorm, const double *xT,
                                 double *gT, double *scratch)
{
    double *logit = scratch, *best = scratch + K * W, *total = best + W;
    for (int64_t r = 0; r < W; r++)
        best[r] = -INFINITY;
    for (int64_t k = 0; k < K; k++) {
        double *lk = logit + k * W;
        for (int64_t r = 0; r < W; r++)
            lk[r] = 0.0;
        for (int64_t j = 0; j < d; j++) {
            const double mj = mmu[k * d + j], ic = inv_c[k * d + j];
            const double *xj = xT + j * W;
            for (int64_t r = 0; r < W; r++) {
                double diff = mj - xj[r];
                lk[r] += diff * (diff * ic);
            }
        }
        for (int64_t r = 0; r < W; r++) {
            lk[r] = lognorm[k] - 0.5 * lk[r];
            best[r] = lk[r] > best[r] ? lk[r] : best[r];
        }
    }
    for (int64_t r = 0; r < W; r++)
        total[r] = 0.0;
    for (int64_t j = 0; j < d; j++)
        for (int64_t r = 0; r < W; r++)
            gT[j * W + r] = 0.0;
    for (int64_t k = 0; k < K; k++) {
        double *lk = logit + k * W;
        /* A component whose weight underflows must weigh exactly 0, as in
         * libm's exp: its own score can be as large as 1e308 (far means,
         * tiny variances), so any floor would leak into the sum. */
        for (int64_t r = 0; r < W; r++) {
            double v = lk[r] - best[r];
            lk[r] = v < DSDE_EXP_FLOOR ? DSDE_EXP_FLOOR : v;
        }
        for (int64_t r = 0; r < W; r++) {
            lk[r] = dsde_exp_nonpositive(lk[r]);
            total[r] += lk[r];
        }
        for (int64_t j = 0; j < d; j++) {
            const double mj = mmu[k * d + j], ic = inv_c[k * d + j];
            const double *xj = xT + j * W;
            double *gj = gT + j * W;
            for (int64_t r = 0; r < W; r++)
                gj[r] += lk[r] * ((mj - xj[r]) * ic);
        }
    }
    for (int64_t j = 0; j < d; j++)
        for (int64_t r = 0; r < W; r++)
            gT[j * W + r] /= total[r];
}

void
DSDE_ISA_NAME(dsde_mixture_tile)(int64_t K, int64_t d, int64_t width, const double *inv_c,
                                 const double *mmu, const double *lognorm, const double *xT,
                                 double *gT, double *scratch)
{
    /* A full tile gets a copy with a constant trip count (the fast path);
     * short blocks (large d) get one sized to their rows. */
    if (width == DSDE_TILE)
        DSDE_ISA_NAME(mixture_tile_body)(K, d, DSDE_TILE, inv_c, mmu, lognorm, xT, gT, scratch);
    else
        DSDE_ISA_NAME(mixture_tile_body)(K, d, width, inv_c, mmu, lognorm, xT, gT, scratch);
}
