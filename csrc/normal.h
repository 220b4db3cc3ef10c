/*
 * Standard normals from Philox words by the Box-Muller transform, evaluated
 * without libm (fastmath.h) so that it vectorizes and gives the same bits on
 * every instruction set.
 *
 * float64: one Philox call (four 32-bit words) -> two normals.
 *     a = (w1:w0) >> 11, b = (w3:w2) >> 11           (53-bit integers)
 *     u1 = (a + 1) 2^-53 in (0, 1],  u2 = b 2^-53 in [0, 1)
 *     z0 = r cos(2 pi u2), z1 = r sin(2 pi u2),  r = sqrt(-2 log u1)
 *     Largest |z|: sqrt(-2 log 2^-53) = sqrt(106 log 2) = 8.5717...
 *
 * float32: one Philox call -> four normals, from the pairs (w0, w1), (w2, w3):
 *     u1 = (w0 + 1) 2^-32 in (0, 1],  u2 = w1 2^-32 in [0, 1)
 *     evaluated in double and rounded once to float.
 *     Largest |z|: sqrt(-2 log 2^-32) = sqrt(64 log 2) = 6.6604...
 *
 * u1 never reaches 0, so no normal is infinite. Normal j of (key, stream, k)
 * is element j % per_block of Philox block j / per_block (rng.h), so any
 * sub-range [j0, j0 + n) is reproduced exactly.
 *
 * The block loops exist for several instruction sets (isa_*.c, simd.h); one
 * is chosen at run time, the best the CPU has, or the one named by
 * dsde_simd_select (the DIFFSDE_SIMD environment variable, via Python).
 */
#ifndef DIFFSDE_NORMAL_H
#define DIFFSDE_NORMAL_H

#include <stdint.h>
#include "rng.h"

#define DSDE_NORMALS_PER_BLOCK_F64 2
#define DSDE_NORMALS_PER_BLOCK_F32 4

/* The transform of one Philox output (used by the known-answer tests). */
void dsde_box_muller_f64(const uint32_t w[4], double z[2]);
void dsde_box_muller_f32(const uint32_t w[4], float z[4]);

/* out[i] = normal j0 + i of (key, stream, k), for i in [0, n). */
void dsde_normal_fill_f64(dsde_philox_key key, uint32_t stream, uint32_t k,
                          uint64_t j0, int64_t n, double *out);
void dsde_normal_fill_f32(dsde_philox_key key, uint32_t stream, uint32_t k,
                          uint64_t j0, int64_t n, float *out);

/* The jobs the module exports, run in parallel chunks (parallel.h); call
 * with the GIL held. 0 on success, -1 with a Python exception set. */

/* out[i] = normal j0 + i of (key, stream, k), for i in [0, n); `f32`: out
 * holds floats, else doubles. */
int dsde_normal_fill_parallel(uint64_t key, uint32_t stream, uint32_t k, uint64_t j0, int64_t n,
                              int f32, void *out, int num_threads);

/* counts[i] += the number of normals j in [0, n) of (key, stream, k) with
 * |z_j| > thresholds[i] (the tail test of the generator's distribution). */
int dsde_count_tails(uint64_t key, uint32_t stream, uint32_t k, int64_t n, int f32,
                     const double *thresholds, int64_t n_thresholds, int64_t *counts,
                     int num_threads);

#endif
