/*
 * Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy
 * as 1, 2, 3", SC'11): a counter-based generator, out = f(counter, key).
 *
 * Every random number diffsde draws is a pure function of
 *
 *     (key, stream, k, j)
 *
 * so results never depend on thread count, chunking or call order.
 *
 * Key (64 bits): the run's key, from the SPEC 7 `rng` argument
 *     key[0] = low 32 bits, key[1] = high 32 bits.
 *
 * Counter (128 bits, four 32-bit words):
 *     ctr[0] = block index, low 32 bits   \  block = j / per_block, where one
 *     ctr[1] = block index, high 32 bits  /  Philox call yields per_block
 *                                            normals: 2 for float64, 4 for
 *                                            float32 (see normal.h)
 *     ctr[2] = k, the time-interval index (0 .. 2^32 - 1)
 *     ctr[3] = stream (0 .. 2^32 - 1):
 *              0      step noise of interval k
 *              1      initial / prior samples, perturb, sample
 *              2 + m  corrector sub-step m (m < 2^30)
 *              2^31   Brownian-bridge levels
 *              2^31 + 2^16 + i  further draws inside a step
 *            (the DSDE_STREAM_* constants of step.h)
 *
 * j is the C-order flat element index of the state array (row * dim + col).
 */
#ifndef DIFFSDE_RNG_H
#define DIFFSDE_RNG_H

#include <stdint.h>

typedef struct {
    uint32_t v[4];
} dsde_philox_ctr;

typedef struct {
    uint32_t v[2];
} dsde_philox_key;

/* One Philox4x32-10 evaluation. */
dsde_philox_ctr dsde_philox4x32_10(dsde_philox_ctr ctr, dsde_philox_key key);

/* The key words of a 64-bit run key. */
dsde_philox_key dsde_key_from_u64(uint64_t key);

/* The counter of Philox block `block` of interval k, stream `stream`. */
dsde_philox_ctr dsde_counter(uint64_t block, uint32_t k, uint32_t stream);

/* Uniforms in [0, 1) with 53 random bits: element j of (key, stream, k) is
 * ((w1:w0) >> 11) 2^-53 (j even) or ((w3:w2) >> 11) 2^-53 (j odd) of Philox
 * block j / 2, the words the float64 normals use for (u1 - 2^-53, u2). */
void dsde_uniform_fill_f64(dsde_philox_key key, uint32_t stream, uint32_t k,
                           uint64_t j0, int64_t n, double *out);

#endif
