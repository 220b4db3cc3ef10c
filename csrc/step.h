/*
 * The row kinds of a step table (a register program), applied to one block
 * of the state (rows x dim elements). Registers are buffers of the block's
 * shape; register 0 is the state x.
 *
 *   score     reg[dst] = w0 reg[src0] + w1 score(reg[src0], t)
 *   normal    reg[dst] = z, normal j of (key, stream, interval), or the
 *             caller's noise[interval] for stream 0
 *   combine   reg[dst] = w0 reg[src0] + w1 reg[src1] + ...  (src = -1 ends)
 *   langevin  reg[dst] = reg[src0] + eps reg[src1] + sqrt(2 eps) reg[src2],
 *             per batch row, eps = 2 w0 (w1 |reg[src2]| / |reg[src1]|)^2
 *             (w0 = r, w1 = snr; eps = 0 when |reg[src1]| = 0)
 *
 * A term whose weight is exactly zero in a score row is absent (no
 * arithmetic, so w0 = 0, w1 = 1 stores the raw score). Arithmetic is in the
 * element type, each weight rounded to it once, left to right in the order
 * written; dst may equal any src (the update is elementwise). Row norms
 * accumulate in double, left to right. Each kernel returns 1 when it wrote a
 * non-finite element (checked in the same pass), else 0.
 *
 * These codes and the stream numbers below are the one definition: the
 * extension exports them (diffsde._core.ROW_KINDS, STREAMS, ...) and Python
 * reads them from there.
 */
#ifndef DIFFSDE_STEP_H
#define DIFFSDE_STEP_H

#include <stdint.h>

enum dsde_row_kind {
    DSDE_ROW_SCORE = 0,
    DSDE_ROW_NORMAL = 1,
    DSDE_ROW_COMBINE = 2,
    DSDE_ROW_LANGEVIN = 3,
    DSDE_N_ROW_KINDS = 4
};

/* Terms (source registers, weights) per row; unused sources are -1. */
#define DSDE_MAX_TERMS 8
/* Registers a table may use (the state and 255 scratch buffers). */
#define DSDE_MAX_REGISTERS 256

/* Noise streams (rng.h): the step noise, the initial state, corrector
 * sub-step m (stream DSDE_STREAM_CORRECTOR + m, m < DSDE_MAX_SUB_STEPS),
 * the Brownian tree, and further draws inside a step (churn noise, a second
 * increment): stream DSDE_STREAM_EXTRA + i, i < DSDE_MAX_EXTRA. The ranges
 * are disjoint, so no two uses ever share a normal. */
#define DSDE_STREAM_STEP 0u
#define DSDE_STREAM_INITIAL 1u
#define DSDE_STREAM_CORRECTOR 2u
#define DSDE_MAX_SUB_STEPS 0x40000000u /* 2**30 */
#define DSDE_STREAM_BROWNIAN 0x80000000u /* 2**31 */
#define DSDE_STREAM_EXTRA 0x80010000u    /* 2**31 + 2**16 */
#define DSDE_MAX_EXTRA 0x10000u          /* 2**16 */

/* reg[dst] = sum_k w[k] src[k], k < n, left to right in the element type. */
int dsde_combine_f64(double *dst, const double *const *src, const double *w, int n, int64_t len);
int dsde_combine_f32(float *dst, const float *const *src, const double *w, int n, int64_t len);

int dsde_langevin_f64(double *out, const double *x, const double *s, const double *z,
                      int64_t rows, int64_t dim, double r, double snr);
int dsde_langevin_f32(float *out, const float *x, const float *s, const float *z,
                      int64_t rows, int64_t dim, double r, double snr);

#endif
