#include "rng.h"

#define PHILOX_M0 UINT32_C(0xD2511F53)
#define PHILOX_M1 UINT32_C(0xCD9E8D57)
#define PHILOX_W0 UINT32_C(0x9E3779B9)
#define PHILOX_W1 UINT32_C(0xBB67AE85)

static inline dsde_philox_ctr
philox_round(dsde_philox_ctr c, dsde_philox_key k)
{
    uint64_t p0 = (uint64_t)PHILOX_M0 * c.v[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * c.v[2];
    dsde_philox_ctr out;
    out.v[0] = (uint32_t)(p1 >> 32) ^ c.v[1] ^ k.v[0];
    out.v[1] = (uint32_t)p1;
    out.v[2] = (uint32_t)(p0 >> 32) ^ c.v[3] ^ k.v[1];
    out.v[3] = (uint32_t)p0;
    return out;
}

dsde_philox_ctr
dsde_philox4x32_10(dsde_philox_ctr ctr, dsde_philox_key key)
{
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            key.v[0] += PHILOX_W0;
            key.v[1] += PHILOX_W1;
        }
        ctr = philox_round(ctr, key);
    }
    return ctr;
}

dsde_philox_key
dsde_key_from_u64(uint64_t key)
{
    dsde_philox_key k = {{(uint32_t)key, (uint32_t)(key >> 32)}};
    return k;
}

dsde_philox_ctr
dsde_counter(uint64_t block, uint32_t k, uint32_t stream)
{
    dsde_philox_ctr c = {{(uint32_t)block, (uint32_t)(block >> 32), k, stream}};
    return c;
}

void
dsde_uniform_fill_f64(dsde_philox_key key, uint32_t stream, uint32_t k, uint64_t j0,
                      int64_t n, double *out)
{
    uint64_t block = j0 / 2;
    int first = (int)(j0 % 2);
    int64_t i = 0;
    while (i < n) {
        dsde_philox_ctr w = dsde_philox4x32_10(dsde_counter(block, k, stream), key);
        for (int e = first; e < 2 && i < n; e++) {
            uint64_t bits = ((((uint64_t)w.v[2 * e + 1]) << 32) | w.v[2 * e]) >> 11;
            out[i++] = (double)bits * 0x1p-53;
        }
        first = 0;
        block++;
    }
}
