/*
 * The Gaussian-mixture score (isotropic or diagonal covariances) for a tile
 * of DSDE_TILE rows at once, rows in the inner loops so that they vectorize.
 * Included by the per-instruction-set files (isa_*.c); see scores.h for the
 * formula. Inputs per step: inv_c = 1 / (m^2 lambda + s^2) and mmu = m mu
 * (K x d), lognorm = log w - 1/2 sum log(2 pi c) (K); the tile's rows come
 * transposed (xT[j][r]) and the scores leave the same way (gT[j][r]).
 */
#include "fastmath.h"
#include "simd.h"

void
DSDE_ISA_NAME(dsde_mixture_tile)(int64_t K, int64_t d, const double *inv_c, const double *mmu,
                                 const double *lognorm, const double *xT, double *gT,
                                 double *scratch)
{
    double *logit = scratch, *best = scratch + K * DSDE_TILE, *total = best + DSDE_TILE;
    for (int r = 0; r < DSDE_TILE; r++)
        best[r] = -INFINITY;
    for (int64_t k = 0; k < K; k++) {
        double *lk = logit + k * DSDE_TILE;
        for (int r = 0; r < DSDE_TILE; r++)
            lk[r] = 0.0;
        for (int64_t j = 0; j < d; j++) {
            const double mj = mmu[k * d + j], ic = inv_c[k * d + j];
            const double *xj = xT + j * DSDE_TILE;
            for (int r = 0; r < DSDE_TILE; r++) {
                double diff = mj - xj[r];
                lk[r] += diff * (diff * ic);
            }
        }
        for (int r = 0; r < DSDE_TILE; r++) {
            lk[r] = lognorm[k] - 0.5 * lk[r];
            best[r] = lk[r] > best[r] ? lk[r] : best[r];
        }
    }
    for (int r = 0; r < DSDE_TILE; r++)
        total[r] = 0.0;
    for (int64_t j = 0; j < d; j++)
        for (int r = 0; r < DSDE_TILE; r++)
            gT[j * DSDE_TILE + r] = 0.0;
    for (int64_t k = 0; k < K; k++) {
        double *lk = logit + k * DSDE_TILE;
        /* weights below e^-708 (< 1e-307 of the largest, which is 1) are
         * taken as e^-708 */
        for (int r = 0; r < DSDE_TILE; r++) {
            double v = lk[r] - best[r];
            lk[r] = v < -708.0 ? -708.0 : v;
        }
        for (int r = 0; r < DSDE_TILE; r++) {
            lk[r] = dsde_exp_nonpositive(lk[r]);
            total[r] += lk[r];
        }
        for (int64_t j = 0; j < d; j++) {
            const double mj = mmu[k * d + j], ic = inv_c[k * d + j];
            const double *xj = xT + j * DSDE_TILE;
            double *gj = gT + j * DSDE_TILE;
            for (int r = 0; r < DSDE_TILE; r++)
                gj[r] += lk[r] * ((mj - xj[r]) * ic);
        }
    }
    for (int64_t j = 0; j < d; j++)
        for (int r = 0; r < DSDE_TILE; r++)
            gT[j * DSDE_TILE + r] /= total[r];
}
