/*
 * The normal generator's inner loops: Philox on CHUNK counters at once, then
 * Box-Muller on the lanes (fastmath.h). Included by one file per instruction
 * set (isa_*.c), each compiled for its target; DSDE_ISA names the
 * functions. Plain loops over lanes, so each compiler vectorizes them with
 * the instructions it was allowed, and every variant computes the same bits.
 */
#include "fastmath.h"
#include "normal.h"

#define DSDE_CHUNK 32

#include "simd.h"

static void
philox_lanes(dsde_philox_key key, uint32_t stream, uint32_t k, uint64_t block0,
             uint32_t w[4][DSDE_CHUNK])
{
    uint32_t c0[DSDE_CHUNK], c1[DSDE_CHUNK], c2[DSDE_CHUNK], c3[DSDE_CHUNK];
    for (int i = 0; i < DSDE_CHUNK; i++) {
        uint64_t block = block0 + (uint64_t)i;
        c0[i] = (uint32_t)block;
        c1[i] = (uint32_t)(block >> 32);
        c2[i] = k;
        c3[i] = stream;
    }
    uint32_t k0 = key.v[0], k1 = key.v[1];
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < DSDE_CHUNK; i++) {
            uint64_t p0 = (uint64_t)UINT32_C(0xD2511F53) * c0[i];
            uint64_t p1 = (uint64_t)UINT32_C(0xCD9E8D57) * c2[i];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[i] ^ k0;
            uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3[i] ^ k1;
            c0[i] = n0;
            c1[i] = (uint32_t)p1;
            c2[i] = n2;
            c3[i] = (uint32_t)p0;
        }
        k0 += UINT32_C(0x9E3779B9);
        k1 += UINT32_C(0xBB67AE85);
    }
    for (int i = 0; i < DSDE_CHUNK; i++) {
        w[0][i] = c0[i];
        w[1][i] = c1[i];
        w[2][i] = c2[i];
        w[3][i] = c3[i];
    }
}

/* Normals 2 block0 .. 2 (block0 + nblocks) - 1 (float64). */
void
DSDE_ISA_NAME(dsde_normal_blocks_f64)(dsde_philox_key key, uint32_t stream, uint32_t k,
                                      uint64_t block0, int64_t nblocks, double *out)
{
    uint32_t w[4][DSDE_CHUNK];
    double z0[DSDE_CHUNK], z1[DSDE_CHUNK];
    for (int64_t done = 0; done < nblocks; done += DSDE_CHUNK) {
        philox_lanes(key, stream, k, block0 + (uint64_t)done, w);
        for (int i = 0; i < DSDE_CHUNK; i++) {
            uint64_t a = ((((uint64_t)w[1][i]) << 32) | w[0][i]) >> 11;
            uint64_t b = ((((uint64_t)w[3][i]) << 32) | w[2][i]) >> 11;
            double r = sqrt(-2.0 * dsde_log_scaled(a + 1, 53));
            double s, c;
            dsde_sincos_turns(b, 53, &s, &c);
            z0[i] = r * c;
            z1[i] = r * s;
        }
        int64_t lanes = nblocks - done < DSDE_CHUNK ? nblocks - done : DSDE_CHUNK;
        for (int64_t i = 0; i < lanes; i++) {
            out[2 * (done + i)] = z0[i];
            out[2 * (done + i) + 1] = z1[i];
        }
    }
}

/* Normals 4 block0 .. 4 (block0 + nblocks) - 1 (float32): pairs (w0, w1) and
 * (w2, w3), 32-bit uniforms, evaluated in double and rounded once. */
void
DSDE_ISA_NAME(dsde_normal_blocks_f32)(dsde_philox_key key, uint32_t stream, uint32_t k,
                                      uint64_t block0, int64_t nblocks, float *out)
{
    uint32_t w[4][DSDE_CHUNK];
    float z[4][DSDE_CHUNK];
    for (int64_t done = 0; done < nblocks; done += DSDE_CHUNK) {
        philox_lanes(key, stream, k, block0 + (uint64_t)done, w);
        for (int pair = 0; pair < 2; pair++) {
            for (int i = 0; i < DSDE_CHUNK; i++) {
                double r = sqrt(-2.0 * dsde_log_scaled((uint64_t)w[2 * pair][i] + 1, 32));
                double s, c;
                dsde_sincos_turns(w[2 * pair + 1][i], 32, &s, &c);
                z[2 * pair][i] = (float)(r * c);
                z[2 * pair + 1][i] = (float)(r * s);
            }
        }
        int64_t lanes = nblocks - done < DSDE_CHUNK ? nblocks - done : DSDE_CHUNK;
        for (int64_t i = 0; i < lanes; i++)
            for (int e = 0; e < 4; e++)
                out[4 * (done + i) + e] = z[e][i];
    }
}
