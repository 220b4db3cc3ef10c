#include "normal.h"
#include <math.h>
#include <string.h>

#include "fastmath.h"

typedef void (*blocks_f64)(dsde_philox_key, uint32_t, uint32_t, uint64_t, int64_t, double *);
typedef void (*blocks_f32)(dsde_philox_key, uint32_t, uint32_t, uint64_t, int64_t, float *);

typedef struct {
    const char *name;
    blocks_f64 f64;
    blocks_f32 f32;
} simd_path;

static const simd_path paths[] = {
    {"baseline", dsde_normal_blocks_f64_baseline, dsde_normal_blocks_f32_baseline},
#if defined(__x86_64__) && defined(__GNUC__)
    {"avx2", dsde_normal_blocks_f64_avx2, dsde_normal_blocks_f32_avx2},
    {"avx512", dsde_normal_blocks_f64_avx512, dsde_normal_blocks_f32_avx512},
#endif
};
#define N_PATHS ((int)(sizeof(paths) / sizeof(paths[0])))

static int current_path = -1;

int
dsde_simd_count(void)
{
    return N_PATHS;
}

const char *
dsde_simd_name(int path)
{
    return path >= 0 && path < N_PATHS ? paths[path].name : "";
}

int
dsde_simd_supported(int path)
{
    if (path == 0)
        return 1;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (path == 1)
        return __builtin_cpu_supports("avx2");
    if (path == 2)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512cd");
#endif
    return 0;
}

int
dsde_simd_current(void)
{
    if (current_path < 0) {
        int best = 0;
        for (int p = 1; p < N_PATHS; p++)
            if (dsde_simd_supported(p))
                best = p;
        current_path = best;
    }
    return current_path;
}

int
dsde_simd_select(const char *name)
{
    for (int p = 0; p < N_PATHS; p++) {
        if (strcmp(name, paths[p].name) == 0) {
            if (!dsde_simd_supported(p))
                return -1;
            current_path = p;
            return 0;
        }
    }
    return -1;
}

void
dsde_box_muller_f64(const uint32_t w[4], double z[2])
{
    uint64_t a = ((((uint64_t)w[1]) << 32) | w[0]) >> 11;
    uint64_t b = ((((uint64_t)w[3]) << 32) | w[2]) >> 11;
    double r = sqrt(-2.0 * dsde_log_scaled(a + 1, 53));
    double s, c;
    dsde_sincos_turns(b, 53, &s, &c);
    z[0] = r * c;
    z[1] = r * s;
}

void
dsde_box_muller_f32(const uint32_t w[4], float z[4])
{
    for (int pair = 0; pair < 2; pair++) {
        double r = sqrt(-2.0 * dsde_log_scaled((uint64_t)w[2 * pair] + 1, 32));
        double s, c;
        dsde_sincos_turns(w[2 * pair + 1], 32, &s, &c);
        z[2 * pair] = (float)(r * c);
        z[2 * pair + 1] = (float)(r * s);
    }
}

/* Whole blocks go straight to the vector loops; a partial first or last
 * block goes through a small buffer. */
#define DEFINE_NORMAL_FILL(NAME, T, PER_BLOCK, FIELD)                          \
    void NAME(dsde_philox_key key, uint32_t stream, uint32_t k, uint64_t j0,   \
              int64_t n, T *out)                                               \
    {                                                                          \
        const blocks_##FIELD blocks = paths[dsde_simd_current()].FIELD;       \
        uint64_t block = j0 / PER_BLOCK;                                       \
        int64_t skip = (int64_t)(j0 % PER_BLOCK), i = 0;                       \
        T tmp[PER_BLOCK];                                                      \
        if (n <= 0)                                                            \
            return;                                                            \
        if (skip) {                                                            \
            blocks(key, stream, k, block++, 1, tmp);                           \
            for (int64_t e = skip; e < PER_BLOCK && i < n; e++)                \
                out[i++] = tmp[e];                                             \
        }                                                                      \
        int64_t whole = (n - i) / PER_BLOCK;                                   \
        blocks(key, stream, k, block, whole, out + i);                         \
        i += whole * PER_BLOCK;                                                \
        block += (uint64_t)whole;                                              \
        if (i < n) {                                                           \
            blocks(key, stream, k, block, 1, tmp);                             \
            for (int64_t e = 0; i < n; e++)                                    \
                out[i++] = tmp[e];                                             \
        }                                                                      \
    }

DEFINE_NORMAL_FILL(dsde_normal_fill_f64, double, DSDE_NORMALS_PER_BLOCK_F64, f64)
DEFINE_NORMAL_FILL(dsde_normal_fill_f32, float, DSDE_NORMALS_PER_BLOCK_F32, f32)
