#include "simd.h"
#include <string.h>

static const dsde_simd_kernels paths[] = {
    {"baseline", dsde_normal_blocks_f64_baseline, dsde_normal_blocks_f32_baseline,
     dsde_mixture_tile_baseline, dsde_mixture_full_tile_baseline,
     dsde_mixture_coefficients_baseline,
     dsde_empirical_rows_baseline, dsde_mixture_row_baseline, dsde_combine_f64_baseline,
     dsde_combine_f32_baseline, dsde_langevin_f64_baseline, dsde_langevin_f32_baseline},
#if defined(__x86_64__) && defined(__GNUC__)
    {"avx2", dsde_normal_blocks_f64_avx2, dsde_normal_blocks_f32_avx2, dsde_mixture_tile_avx2,
     dsde_mixture_full_tile_avx2, dsde_mixture_coefficients_avx2,
     dsde_empirical_rows_avx2, dsde_mixture_row_avx2, dsde_combine_f64_avx2,
     dsde_combine_f32_avx2, dsde_langevin_f64_avx2, dsde_langevin_f32_avx2},
    {"avx512", dsde_normal_blocks_f64_avx512, dsde_normal_blocks_f32_avx512,
     dsde_mixture_tile_avx512, dsde_mixture_full_tile_avx512,
     dsde_mixture_coefficients_avx512, dsde_empirical_rows_avx512,
     dsde_mixture_row_avx512, dsde_combine_f64_avx512, dsde_combine_f32_avx512,
     dsde_langevin_f64_avx512, dsde_langevin_f32_avx512},
#endif
};
#define N_PATHS ((int)(sizeof(paths) / sizeof(paths[0])))

/* Written only by dsde_simd_init (module import) and dsde_simd_select (with
 * the GIL held); read by worker threads in every run. Relaxed atomics make a
 * switch during a run well defined: each block then uses either path, and
 * both give the same bits. -1 until dsde_simd_init ran. */
static int current_path = -1;
static int default_path = -1;

#if defined(__GNUC__)
#define LOAD_PATH(p) __atomic_load_n(&(p), __ATOMIC_RELAXED)
#define STORE_PATH(p, v) __atomic_store_n(&(p), (v), __ATOMIC_RELAXED)
#else
#define LOAD_PATH(p) (p)
#define STORE_PATH(p, v) ((p) = (v))
#endif

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
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512cd");
#endif
    return 0;
}

void
dsde_simd_init(void)
{
    int best = 0;
    for (int p = 1; p < N_PATHS; p++)
        if (dsde_simd_supported(p))
            best = p;
    default_path = best;
    STORE_PATH(current_path, best);
}

int
dsde_simd_default(void)
{
    return default_path;
}

int
dsde_simd_current(void)
{
    /* Before dsde_simd_init (never, once the module is imported) the portable
     * path, so nothing is resolved lazily from a worker thread. */
    int path = LOAD_PATH(current_path);
    return path < 0 ? 0 : path;
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
            STORE_PATH(current_path, p);
            return 0;
        }
    }
    return -1;
}
