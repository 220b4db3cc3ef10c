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

/* Rows per register block of the full-covariance kernel: DSDE_LANES rows
 * in a GCC vector type (one register on AVX-512 and AVX2, two on SSE2 or
 * NEON), DSDE_ROW_VECTORS such vectors side by side. AVX-512 (32 registers)
 * takes one vector of 8; below it (16 registers) an 8-lane vector type
 * spilled its accumulators, while two explicit 4-lane vectors stay in
 * registers. A row's operations do not depend on either. */
#if defined(__AVX512F__)
#define DSDE_LANES 8
#define DSDE_ROW_VECTORS 1
#else
#define DSDE_LANES 4
#define DSDE_ROW_VECTORS 2
#endif
#ifndef DSDE_LANES_TYPE
#define DSDE_LANES_TYPE
typedef double dsde_lanes __attribute__((vector_size(DSDE_LANES * sizeof(double))));
#endif

#ifndef DSDE_ALWAYS_INLINE
#if defined(__GNUC__)
#define DSDE_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define DSDE_ALWAYS_INLINE inline
#endif
#endif

/* D is d; SMALL (a constant at each call, set with the constant D = 2) puts
 * the coordinate loops inside the row loops, where they unroll, so each
 * logit and score coordinate stays in a register until it is stored. Per row the operations and their order are
 * those written in the loops below whatever the fusion: lk = 0 + t_0 + t_1
 * + ..., then the clamp, the exp and the sums over k in order. */
static DSDE_ALWAYS_INLINE void
DSDE_ISA_NAME(mixture_tile_body)(int64_t K, const int64_t D, const int SMALL, const int64_t W,
                                 const double *inv_c, const double *mmu, const double *lognorm,
                                 const double *xT, double *gT, double *scratch)
{
    const int64_t d = D;
    double *logit = scratch, *best = scratch + K * W, *total = best + W;
    for (int64_t r = 0; r < W; r++)
        best[r] = -INFINITY;
    for (int64_t k = 0; k < K; k++) {
        double *lk = logit + k * W;
        const double *mk = mmu + k * d, *ick = inv_c + k * d;
        const double lnk = lognorm[k];
        if (SMALL) { /* the coordinates inside the row loop */
            for (int64_t r = 0; r < W; r++) {
                double acc = 0.0;
                for (int64_t j = 0; j < D; j++) {
                    double diff = mk[j] - xT[j * W + r];
                    acc += diff * (diff * ick[j]);
                }
                double l = lnk - 0.5 * acc;
                lk[r] = l;
                best[r] = l > best[r] ? l : best[r];
            }
            continue;
        }
        for (int64_t r = 0; r < W; r++) { /* j = 0, added to 0 as in the sum */
            double diff = mk[0] - xT[r];
            lk[r] = 0.0 + diff * (diff * ick[0]);
        }
        for (int64_t j = 1; j < d; j++) {
            const double mj = mk[j], ic = ick[j];
            const double *xj = xT + j * W;
            for (int64_t r = 0; r < W; r++) {
                double diff = mj - xj[r];
                lk[r] += diff * (diff * ic);
            }
        }
        for (int64_t r = 0; r < W; r++) {
            lk[r] = lnk - 0.5 * lk[r];
            best[r] = lk[r] > best[r] ? lk[r] : best[r];
        }
    }
    for (int64_t r = 0; r < W; r++)
        total[r] = 0.0;
    if (!SMALL)
        for (int64_t j = 0; j < d; j++)
            for (int64_t r = 0; r < W; r++)
                gT[j * W + r] = 0.0;
    for (int64_t k = 0; k < K; k++) {
        double *lk = logit + k * W;
        const double *mk = mmu + k * d, *ick = inv_c + k * d;
        /* A component whose weight underflows must weigh exactly 0, as in
         * libm's exp: its own score can be as large as 1e308 (far means,
         * tiny variances), so any floor would leak into the sum. */
        for (int64_t r = 0; r < W; r++)
            lk[r] = lk[r] - best[r];
        dsde_exp_weights(lk, W);
        for (int64_t r = 0; r < W; r++)
            total[r] += lk[r];
        if (SMALL && k == 0) { /* the sums start at 0 */
            for (int64_t r = 0; r < W; r++)
                for (int64_t j = 0; j < D; j++)
                    gT[j * W + r] = 0.0 + lk[r] * ((mk[j] - xT[j * W + r]) * ick[j]);
            continue;
        }
        if (SMALL) {
            for (int64_t r = 0; r < W; r++)
                for (int64_t j = 0; j < D; j++)
                    gT[j * W + r] += lk[r] * ((mk[j] - xT[j * W + r]) * ick[j]);
            continue;
        }
        for (int64_t j = 0; j < d; j++) {
            const double mj = mk[j], ic = ick[j];
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

/* One row (large d, where the driver's blocks hold fewer rows than a
 * vector), vectorized over the coordinates instead of the rows, with the
 * tile's operations in the tile's order, so the same bits: each logit is
 * still summed over j in order (eight terms at a time computed in a vector,
 * then added one by one; the K sums are independent chains), and each
 * score coordinate still sums its components in order (vectorized over j).
 * The coefficients are formed here rather than stored for the block (at
 * large d their K d stores and loads would cost more than the score):
 * m mu on the fly, 1/c once for a component with one variance, else into
 * icbuf (K d) during the first pass. */
void
DSDE_ISA_NAME(dsde_mixture_row)(const dsde_mix_row_args *a, const double *x, double *g,
                                double *icbuf, double *scratch)
{
    const int64_t K = a->K, d = a->d;
    const double m = a->m, m2 = a->m * a->m, s2 = a->s * a->s;
    double *logit = scratch, best = -INFINITY, total = 0.0;
    for (int64_t k = 0; k < K; k++) {
        const double *mu = a->means + k * d, *lam = a->lambdas + k * d;
        double *ic = icbuf + k * d, lk = 0.0;
        const int one = a->uniform != NULL && a->uniform[k] != 0.0;
        const double ic0 = 1.0 / (m2 * lam[0] + s2);
        int64_t j0 = 0;
        for (; j0 + 8 <= d; j0 += 8) {
            double t[8];
            if (one)
                for (int l = 0; l < 8; l++) {
                    double diff = m * mu[j0 + l] - x[j0 + l];
                    t[l] = diff * (diff * ic0);
                }
            else
                for (int l = 0; l < 8; l++) {
                    double c = 1.0 / (m2 * lam[j0 + l] + s2);
                    double diff = m * mu[j0 + l] - x[j0 + l];
                    ic[j0 + l] = c;
                    t[l] = diff * (diff * c);
                }
            for (int l = 0; l < 8; l++)
                lk += t[l];
        }
        for (int64_t j = j0; j < d; j++) {
            double c = one ? ic0 : 1.0 / (m2 * lam[j] + s2);
            double diff = m * mu[j] - x[j];
            ic[j] = c;
            lk += diff * (diff * c);
        }
        logit[k] = a->lognorm[k] - 0.5 * lk;
        best = logit[k] > best ? logit[k] : best;
    }
    for (int64_t j = 0; j < d; j++)
        g[j] = 0.0;
    for (int64_t k = 0; k < K; k++) {
        double v = logit[k] - best;
        const double weight = dsde_exp_nonpositive(v < DSDE_EXP_FLOOR ? DSDE_EXP_FLOOR : v);
        const double *mu = a->means + k * d, *ic = icbuf + k * d;
        total += weight;
        if (a->uniform != NULL && a->uniform[k] != 0.0) {
            const double ic0 = 1.0 / (m2 * a->lambdas[k * d] + s2);
            for (int64_t j = 0; j < d; j++)
                g[j] += weight * ((m * mu[j] - x[j]) * ic0);
        }
        else
            for (int64_t j = 0; j < d; j++)
                g[j] += weight * ((m * mu[j] - x[j]) * ic[j]);
    }
    for (int64_t j = 0; j < d; j++)
        g[j] /= total;
}

void
DSDE_ISA_NAME(dsde_mixture_tile)(int64_t K, int64_t d, int64_t width, const double *inv_c,
                                 const double *mmu, const double *lognorm, const double *xT,
                                 double *gT, double *scratch)
{
    /* A full tile gets a copy with a constant trip count (the fast path);
     * short blocks (large d) get one sized to their rows. */
    if (width == DSDE_TILE && d == 2)
        DSDE_ISA_NAME(mixture_tile_body)(K, 2, 1, DSDE_TILE, inv_c, mmu, lognorm, xT, gT, scratch);
    else if (width == DSDE_TILE)
        DSDE_ISA_NAME(mixture_tile_body)(K, d, 0, DSDE_TILE, inv_c, mmu, lognorm, xT, gT, scratch);
    else
        DSDE_ISA_NAME(mixture_tile_body)(K, d, 0, width, inv_c, mmu, lognorm, xT, gT, scratch);
}


/*
 * Full covariances, the same tile layout: per component the precision
 * matrix P_k = (m^2 Sigma_k + s^2 I)^{-1} = U_k diag(1/c_k) U_k^T, formed
 * once per call (csrc/scores.c), turns each row into one matrix-vector
 * product, d^2 multiply-adds per component vectorized over the tile's rows:
 *
 *     diff = m mu_k - x,  v_k = P_k diff,  quad_k = diff . v_k,
 *     l_k = lognorm_k - quad_k / 2,  score = sum_k softmax(l)_k v_k,
 *
 * with the sums in index order and the weights through the same clamp and
 * table exp as the diagonal kernel. scratch: K W logits, 2 W, then d W
 * (diff) and K d W (the v_k).
 */

/* v_k = P diff and the quadratic form diff . v_k for H vectors of
 * DSDE_LANES rows (H a constant, 1 or DSDE_ROW_VECTORS; diff, vk and lk
 * start at the block's first row), in GCC/clang vectors that the compiler
 * splits into what the instruction set has. Four rows of P per pass share
 * the loads of diff, and each of their H x 4 accumulators stays in a
 * register over j; the H vectors share each broadcast of a P entry. Each
 * lane is its own row with IEEE mul and add in index order. The loops over
 * h and q are unrolled so that the accumulators stay in registers (rolled,
 * GCC stored them to the stack and copied them out in 16-byte halves: a
 * quarter of this kernel's time on AVX2). */
static DSDE_ALWAYS_INLINE void
DSDE_ISA_NAME(full_tile_rows)(const int H, int64_t d, int64_t W, const double *P,
                              const double *diff, double *vk, double *lk)
{
    dsde_lanes quad[DSDE_ROW_VECTORS], a[DSDE_ROW_VECTORS][4], dj[DSDE_ROW_VECTORS], di;
    for (int h = 0; h < H; h++)
        quad[h] = (dsde_lanes){0.0};
    int64_t i = 0;
    for (; i + 4 <= d; i += 4) {
        const double *Pi = P + i * d;
#pragma GCC unroll 2
        for (int h = 0; h < H; h++) {
            memcpy(&dj[h], diff + h * DSDE_LANES, sizeof dj[h]);
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++)
                a[h][q] = Pi[q * d] * dj[h];
        }
        for (int64_t j = 1; j < d; j++) {
#pragma GCC unroll 2
            for (int h = 0; h < H; h++)
                memcpy(&dj[h], diff + j * W + h * DSDE_LANES, sizeof dj[h]);
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++) {
                const double p = Pi[q * d + j];
#pragma GCC unroll 2
                for (int h = 0; h < H; h++)
                    a[h][q] = a[h][q] + p * dj[h];
            }
        }
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++)
#pragma GCC unroll 2
            for (int h = 0; h < H; h++) {
                const int64_t at = (i + q) * W + h * DSDE_LANES;
                memcpy(vk + at, &a[h][q], sizeof a[h][q]);
                memcpy(&di, diff + at, sizeof di);
                quad[h] = quad[h] + di * a[h][q];
            }
    }
    for (; i < d; i++) {
        const double *Pi = P + i * d;
#pragma GCC unroll 2
        for (int h = 0; h < H; h++) {
            dsde_lanes acc;
            memcpy(&dj[h], diff + h * DSDE_LANES, sizeof dj[h]);
            acc = Pi[0] * dj[h];
            for (int64_t j = 1; j < d; j++) {
                memcpy(&dj[h], diff + j * W + h * DSDE_LANES, sizeof dj[h]);
                acc = acc + Pi[j] * dj[h];
            }
            memcpy(vk + i * W + h * DSDE_LANES, &acc, sizeof acc);
            memcpy(&di, diff + i * W + h * DSDE_LANES, sizeof di);
            quad[h] = quad[h] + di * acc;
        }
    }
#pragma GCC unroll 2
    for (int h = 0; h < H; h++)
        memcpy(lk + h * DSDE_LANES, &quad[h], sizeof quad[h]);
}

static DSDE_ALWAYS_INLINE void
DSDE_ISA_NAME(mixture_full_tile_body)(int64_t K, int64_t d, const int64_t W, const double *prec,
                                      const double *mmu, const double *lognorm, const double *xT,
                                      double *gT, double *scratch)
{
    double *logit = scratch, *best = scratch + K * W, *total = best + W;
    double *diff = total + W, *v = diff + d * W;
    for (int64_t r = 0; r < W; r++)
        best[r] = -INFINITY;
    for (int64_t k = 0; k < K; k++) {
        const double *P = prec + k * d * d;
        double *lk = logit + k * W, *vk = v + k * d * W;
        for (int64_t j = 0; j < d; j++) {
            const double mj = mmu[k * d + j];
            const double *xj = xT + j * W;
            double *dj = diff + j * W;
            for (int64_t r = 0; r < W; r++)
                dj[r] = mj - xj[r];
        }
        int64_t r0 = 0;
        for (; r0 + DSDE_ROW_VECTORS * DSDE_LANES <= W; r0 += DSDE_ROW_VECTORS * DSDE_LANES)
            DSDE_ISA_NAME(full_tile_rows)(DSDE_ROW_VECTORS, d, W, P, diff + r0, vk + r0, lk + r0);
        for (; r0 + DSDE_LANES <= W; r0 += DSDE_LANES)
            DSDE_ISA_NAME(full_tile_rows)(1, d, W, P, diff + r0, vk + r0, lk + r0);
        for (int64_t r = r0; r < W; r++) {
            double quad = 0.0;
            for (int64_t i = 0; i < d; i++) {
                const double *Pi = P + i * d;
                double acc = Pi[0] * diff[r];
                for (int64_t j = 1; j < d; j++)
                    acc += Pi[j] * diff[j * W + r];
                vk[i * W + r] = acc;
                quad += diff[i * W + r] * acc;
            }
            lk[r] = quad;
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
        const double *vk = v + k * d * W;
        for (int64_t r = 0; r < W; r++)
            lk[r] = lk[r] - best[r];
        dsde_exp_weights(lk, W);
        for (int64_t r = 0; r < W; r++)
            total[r] += lk[r];
        for (int64_t j = 0; j < d; j++) {
            const double *vj = vk + j * W;
            double *gj = gT + j * W;
            for (int64_t r = 0; r < W; r++)
                gj[r] += lk[r] * vj[r];
        }
    }
    for (int64_t j = 0; j < d; j++)
        for (int64_t r = 0; r < W; r++)
            gT[j * W + r] /= total[r];
}

void
DSDE_ISA_NAME(dsde_mixture_full_tile)(int64_t K, int64_t d, int64_t width, const double *prec,
                                      const double *mmu, const double *lognorm, const double *xT,
                                      double *gT, double *scratch)
{
    if (width == DSDE_TILE)
        DSDE_ISA_NAME(mixture_full_tile_body)(K, d, DSDE_TILE, prec, mmu, lognorm, xT, gT, scratch);
    else
        DSDE_ISA_NAME(mixture_full_tile_body)(K, d, width, prec, mmu, lognorm, xT, gT, scratch);
}

/* inv_c = 1 / (m^2 lambda + s^2) and mmu = m mu over n = K d entries,
 * elementwise (the same IEEE operations on every path); compiled per
 * instruction set because at large d and small blocks these K d divisions
 * are a large part of an evaluation. */
void
DSDE_ISA_NAME(dsde_mixture_coefficients)(int64_t n, double m, double s, const double *lambdas,
                                         const double *means, double *inv_c, double *mmu)
{
    const double m2 = m * m, s2 = s * s;
    for (int64_t i = 0; i < n; i++)
        inv_c[i] = 1.0 / (m2 * lambdas[i] + s2);
    for (int64_t i = 0; i < n; i++)
        mmu[i] = m * means[i];
}
