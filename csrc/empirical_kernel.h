/*
 * The empirical-data score (csrc/scores.h) for a block of rows, blocked so
 * that it runs at the speed of a matrix product: DSDE_EMP_ROWS rows at a
 * time against DSDE_EMP_POINTS points at a time, the points of a block
 * eight to a vector. Included by the per-instruction-set files (isa_*.c).
 *
 * With the data centred, y'_p = y_p - ybar, and x' = x - m ybar,
 *
 *     |x - m y_p|^2 = (|x'|^2 - 2m x'.y'_p) + m^2 |y'_p|^2,
 *     score(x) = (m sum_p w_p y'_p / sum_p w_p - x') / s^2,
 *     w_p = exp(l_p - best),  l_p = -|x - m y_p|^2 / (2 s^2),
 *
 * so each pair of a row and a point costs two multiply-adds per coordinate
 * (the dot product, then the weighted sum of the points), with centring
 * keeping the expansion's cancellation to the spread of the data rather
 * than its offset. Per row, the points are visited in blocks in their order;
 * a block's largest logit updates the running maximum (rescaling the sums
 * by the table exp of the difference), its weights go through the clamped
 * table exp of csrc/fastmath.h, and the total is kept in eight partial sums
 * (point p in sum p mod 8) added in a fixed tree at the end. Every sum has
 * a fixed order that depends on neither the rows around a row nor the
 * vector length, so a row's bits are the same on every path, in every
 * block and on every thread; a zero weight is skipped, which adds nothing
 * either way.
 */
#include "fastmath.h"
#include "simd.h"

#include <math.h>
#include <string.h>

#if DSDE_EMP_ROWS != 4
#error "the weighted sums below are written out for 4 rows"
#endif

#ifndef DSDE_EMPIRICAL_KERNEL_ONCE
#define DSDE_EMPIRICAL_KERNEL_ONCE
/* Lanes of a point vector: the layout of the packed points, whatever the
 * instruction set (csrc/scores.h). */
#define DSDE_EMP_LANES 8
#endif

/* Lanes computed per register block: the eight lanes of a point vector at
 * once on AVX-512 (one register), in two halves below it (on AVX2 an
 * eight-lane vector is two registers, and the four row accumulators and
 * the point vector then spill). Each lane is its own (row, point) or (row,
 * coordinate) sum, so the split changes no result. */
#if defined(__AVX512F__)
#define DSDE_EMP_BLOCK 8
#else
#define DSDE_EMP_BLOCK 4
#endif
typedef double dsde_emp_block __attribute__((vector_size(DSDE_EMP_BLOCK * sizeof(double))));

void
DSDE_ISA_NAME(dsde_empirical_rows)(const dsde_emp_args *a, const double *x, int64_t nrows,
                                   double *g, double *work)
{
    const int64_t d = a->d, n = a->n, R = DSDE_EMP_ROWS, B = DSDE_EMP_POINTS;
    const double m = a->m, s2 = a->s * a->s, two_m = 2.0 * m, m2 = m * m;
    const double neg_inv_two_s2 = -0.5 / s2;
    double *xc = work, *acc = xc + R * d, *logit = acc + R * d, *tot = logit + R * B;
    double best[DSDE_EMP_ROWS], xx[DSDE_EMP_ROWS];

    /* the rows, centred (a short group repeats its last row; those results
     * are dropped) */
    for (int64_t r = 0; r < R; r++) {
        const double *xr = x + (r < nrows ? r : nrows - 1) * d;
        double sq = 0.0;
        for (int64_t j = 0; j < d; j++) {
            double v = xr[j] - m * a->center[j];
            xc[r * d + j] = v;
            sq += v * v;
        }
        xx[r] = sq;
        best[r] = -INFINITY;
        for (int l = 0; l < DSDE_EMP_LANES; l++)
            tot[r * DSDE_EMP_LANES + l] = 0.0;
        for (int64_t j = 0; j < d; j++)
            acc[r * d + j] = 0.0;
    }

    for (int64_t p0 = 0; p0 < n; p0 += B) {
        const int64_t p1 = p0 + B < n ? p0 + B : n;
        const int64_t nvec = (p1 - p0 + DSDE_EMP_LANES - 1) / DSDE_EMP_LANES;
        /* logits: x'.y'_p for R rows and a block of points per step over j */
        for (int64_t v = 0; v < nvec; v++)
            for (int h = 0; h < DSDE_EMP_LANES; h += DSDE_EMP_BLOCK) {
                const double *yT = a->points_t + (p0 / DSDE_EMP_LANES + v) * d * DSDE_EMP_LANES + h;
                dsde_emp_block dot[DSDE_EMP_ROWS], y, q;
                memcpy(&y, yT, sizeof y);
                for (int64_t r = 0; r < R; r++)
                    dot[r] = xc[r * d] * y;
                for (int64_t j = 1; j < d; j++) {
                    memcpy(&y, yT + j * DSDE_EMP_LANES, sizeof y);
                    for (int64_t r = 0; r < R; r++)
                        dot[r] = dot[r] + xc[r * d + j] * y;
                }
                memcpy(&q, a->sq_norms + p0 + v * DSDE_EMP_LANES + h, sizeof q);
                for (int64_t r = 0; r < R; r++) {
                    dsde_emp_block dist = (xx[r] - two_m * dot[r]) + m2 * q;
                    dist = dist * neg_inv_two_s2;
                    memcpy(logit + r * B + v * DSDE_EMP_LANES + h, &dist, sizeof dist);
                }
            }
        for (int64_t r = 0; r < R; r++) {
            double *lr = logit + r * B, top = -INFINITY;
            const int64_t np = p1 - p0;
            for (int64_t p = 0; p < np; p++)
                top = lr[p] > top ? lr[p] : top;
            if (top > best[r]) {
                double e = best[r] - top;
                double shrink = dsde_exp_nonpositive(e < DSDE_EXP_FLOOR ? DSDE_EXP_FLOOR : e);
                for (int l = 0; l < DSDE_EMP_LANES; l++)
                    tot[r * DSDE_EMP_LANES + l] *= shrink;
                /* + 0.0 turns an underflow to -0 into +0: the sums are never
                 * -0, so adding a zero weight's +-0 terms changes nothing
                 * and skipping them is exact */
                for (int64_t j = 0; j < d; j++)
                    acc[r * d + j] = acc[r * d + j] * shrink + 0.0;
                best[r] = top;
            }
            for (int64_t p = 0; p < np; p++)
                lr[p] = lr[p] - best[r];
            dsde_exp_weights(lr, np);
            for (int64_t p = 0; p < np; p++)
                tot[r * DSDE_EMP_LANES + p % DSDE_EMP_LANES] += lr[p];
        }
        /* the weighted sums, eight coordinates of the R rows at a time in
         * registers over the block's points (each row's sums still in point
         * order); points whose R weights are all 0 are left out (a zero
         * weight adds +-0 to a sum that is never -0: nothing) */
        int64_t *live = (int64_t *)(tot + R * DSDE_EMP_LANES), nlive = 0;
        for (int64_t p = p0; p < p1; p++) {
            const int64_t i = p - p0;
            if (logit[i] != 0.0 || logit[B + i] != 0.0 || logit[2 * B + i] != 0.0 ||
                logit[3 * B + i] != 0.0)
                live[nlive++] = p;
        }
        int64_t j0 = 0;
        for (; j0 + DSDE_EMP_BLOCK <= d; j0 += DSDE_EMP_BLOCK) {
            dsde_emp_block s0, s1, s2v, s3, y;
            memcpy(&s0, acc + j0, sizeof s0);
            memcpy(&s1, acc + d + j0, sizeof s1);
            memcpy(&s2v, acc + 2 * d + j0, sizeof s2v);
            memcpy(&s3, acc + 3 * d + j0, sizeof s3);
            for (int64_t q = 0; q < nlive; q++) {
                const int64_t p = live[q], i = p - p0;
                memcpy(&y, a->points + p * d + j0, sizeof y);
                s0 = s0 + logit[i] * y;
                s1 = s1 + logit[B + i] * y;
                s2v = s2v + logit[2 * B + i] * y;
                s3 = s3 + logit[3 * B + i] * y;
            }
            memcpy(acc + j0, &s0, sizeof s0);
            memcpy(acc + d + j0, &s1, sizeof s1);
            memcpy(acc + 2 * d + j0, &s2v, sizeof s2v);
            memcpy(acc + 3 * d + j0, &s3, sizeof s3);
        }
        for (; j0 < d; j0++)
            for (int64_t q = 0; q < nlive; q++) {
                const int64_t p = live[q], i = p - p0;
                const double y = a->points[p * d + j0];
                for (int64_t r = 0; r < R; r++)
                    acc[r * d + j0] += logit[r * B + i] * y;
            }
        if (a->poll != NULL && a->poll(a->poll_arg))
            return;
    }
    for (int64_t r = 0; r < R && r < nrows; r++) {
        const double *t = tot + r * DSDE_EMP_LANES;
        const double total = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
        for (int64_t j = 0; j < d; j++)
            g[r * d + j] = ((m * acc[r * d + j]) / total - xc[r * d + j]) / s2;
    }
}
