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

/* Philox4x32-10 on DSDE_CHUNK consecutive blocks: w[e][i] = word e of block
 * block0 + i, in [0, 2^32).
 *
 * On x86-64 each 32-bit word lives in the low half of a 64-bit lane and the
 * rounds run on DSDE_PHILOX_LANES blocks at a time in registers: a product
 * is then one pmuludq (32 x 32 -> 64 bits of the low halves) and nothing
 * moves between 32- and 64-bit lanes; the upper halves carry garbage between
 * rounds and are cleared at the end. Compilers do not find pmuludq in the
 * plain loop (they multiply 64-bit lanes with shifts and adds, or shuffle
 * 32-bit lanes to and fro), hence the intrinsics. Elsewhere (NEON) the plain
 * loop, which compilers widen-multiply well. Integer arithmetic: every path
 * gives the same words. */
#if defined(__x86_64__) && defined(__SSE2__) && defined(__GNUC__)
#include <immintrin.h>
#if defined(__AVX512F__)
#define DSDE_PHILOX_LANES 16
typedef __m512i dsde_philox_native;
#define DSDE_MUL_EPU32 _mm512_mul_epu32
#elif defined(__AVX2__)
#define DSDE_PHILOX_LANES 8
typedef __m256i dsde_philox_native;
#define DSDE_MUL_EPU32 _mm256_mul_epu32
#else
#define DSDE_PHILOX_LANES 8
typedef __m128i dsde_philox_native;
#define DSDE_MUL_EPU32 _mm_mul_epu32
#endif
typedef uint64_t dsde_philox_vec __attribute__((vector_size(DSDE_PHILOX_LANES * 8)));
#define DSDE_PHILOX_PARTS (sizeof(dsde_philox_vec) / sizeof(dsde_philox_native))

/* *out = (a mod 2^32) (b mod 2^32) in each 64-bit lane (through pointers:
 * a 64-byte vector passed by value draws ABI warnings below AVX-512) */
static inline void
philox_mul(const dsde_philox_vec *a, const dsde_philox_vec *b, dsde_philox_vec *out)
{
    dsde_philox_native na[DSDE_PHILOX_PARTS], nb[DSDE_PHILOX_PARTS], r[DSDE_PHILOX_PARTS];
    memcpy(na, a, sizeof na);
    memcpy(nb, b, sizeof nb);
    for (unsigned p = 0; p < DSDE_PHILOX_PARTS; p++)
        r[p] = DSDE_MUL_EPU32(na[p], nb[p]);
    memcpy(out, r, sizeof r);
}

static void
philox_lanes(dsde_philox_key key, uint32_t stream, uint32_t k, uint64_t block0,
             uint64_t w[4][DSDE_CHUNK])
{
    const uint64_t lo = UINT64_C(0xFFFFFFFF);
    const dsde_philox_vec m0 = (dsde_philox_vec){0} + UINT64_C(0xD2511F53);
    const dsde_philox_vec m1 = (dsde_philox_vec){0} + UINT64_C(0xCD9E8D57);
    for (int i0 = 0; i0 < DSDE_CHUNK; i0 += DSDE_PHILOX_LANES) {
        dsde_philox_vec c0, c1, c2, c3;
        for (int l = 0; l < DSDE_PHILOX_LANES; l++) {
            uint64_t block = block0 + (uint64_t)(i0 + l);
            c0[l] = block & lo;
            c1[l] = block >> 32;
            c2[l] = k;
            c3[l] = stream;
        }
        uint64_t k0 = key.v[0], k1 = key.v[1];
        for (int round = 0; round < 10; round++) {
            dsde_philox_vec p0, p1;
            philox_mul(&c0, &m0, &p0);
            philox_mul(&c2, &m1, &p1);
            c0 = (p1 >> 32) ^ c1 ^ k0;
            c1 = p1;
            c2 = (p0 >> 32) ^ c3 ^ k1;
            c3 = p0;
            k0 = (k0 + UINT32_C(0x9E3779B9)) & lo;
            k1 = (k1 + UINT32_C(0xBB67AE85)) & lo;
        }
        c0 &= lo, c1 &= lo, c2 &= lo, c3 &= lo;
        memcpy(&w[0][i0], &c0, sizeof c0);
        memcpy(&w[1][i0], &c1, sizeof c1);
        memcpy(&w[2][i0], &c2, sizeof c2);
        memcpy(&w[3][i0], &c3, sizeof c3);
    }
}
#else
static void
philox_lanes(dsde_philox_key key, uint32_t stream, uint32_t k, uint64_t block0,
             uint64_t w[4][DSDE_CHUNK])
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
#endif

/* Normals 2 block0 .. 2 (block0 + nblocks) - 1 (float64). */
void
DSDE_ISA_NAME(dsde_normal_blocks_f64)(dsde_philox_key key, uint32_t stream, uint32_t k,
                                      uint64_t block0, int64_t nblocks, double *out)
{
    uint64_t w[4][DSDE_CHUNK];
    double z0[DSDE_CHUNK], z1[DSDE_CHUNK], n[DSDE_CHUNK], f[DSDE_CHUNK], r[DSDE_CHUNK];
    for (int64_t done = 0; done < nblocks; done += DSDE_CHUNK) {
        philox_lanes(key, stream, k, block0 + (uint64_t)done, w);
        for (int i = 0; i < DSDE_CHUNK; i++) {
            uint64_t a = ((w[1][i] << 32) | w[0][i]) >> 11;
            dsde_log_reduce(a + 1, 53, &n[i], &f[i]);
        }
        for (int i = 0; i < DSDE_CHUNK; i++)
            r[i] = sqrt(-2.0 * dsde_log_finish(n[i], f[i]));
        for (int i = 0; i < DSDE_CHUNK; i++) {
            uint64_t b = ((w[3][i] << 32) | w[2][i]) >> 11;
            double s, c;
            dsde_sincos_turns(b, 53, &s, &c);
            z0[i] = r[i] * c;
            z1[i] = r[i] * s;
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
    uint64_t w[4][DSDE_CHUNK];
    float z[4][DSDE_CHUNK];
    for (int64_t done = 0; done < nblocks; done += DSDE_CHUNK) {
        philox_lanes(key, stream, k, block0 + (uint64_t)done, w);
        for (int pair = 0; pair < 2; pair++) {
            for (int i = 0; i < DSDE_CHUNK; i++) {
                double r = sqrt(-2.0 * dsde_log_scaled(w[2 * pair][i] + 1, 32));
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
