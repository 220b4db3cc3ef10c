#include "simd.h"
#include <string.h>

static const dsde_simd_kernels paths[] = {
    {"baseline", dsde_normal_blocks_f64_baseline, dsde_normal_blocks_f32_baseline,
     dsde_mixture_tile_baseline},
#if defined(__x86_64__) && defined(__GNUC__)
    {"avx2", dsde_normal_blocks_f64_avx2, dsde_normal_blocks_f32_avx2, dsde_mixture_tile_avx2},
    {"avx512", dsde_normal_blocks_f64_avx512, dsde_normal_blocks_f32_avx512,
     dsde_mixture_tile_avx512},
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

const dsde_simd_kernels *
dsde_simd(void)
{
    return &paths[dsde_simd_current()];
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
