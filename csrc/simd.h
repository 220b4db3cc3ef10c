/*
 * Kernels compiled once per instruction set (isa_*.c) and the run-time
 * choice between them. Every path does the same IEEE operations in the same
 * order per element, so all give the same bits (tests/test_rng.py and
 * tests/test_scores.py check); only the speed differs.
 */
#ifndef DIFFSDE_SIMD_H
#define DIFFSDE_SIMD_H

#include <stdint.h>
#include "rng.h"

/* Rows per tile of the vectorized mixture score (at most; a block of fewer
 * rows gets a tile of its size). */
#define DSDE_TILE 64

#define DSDE_CAT2(a, b) a##_##b
#define DSDE_CAT(a, b) DSDE_CAT2(a, b)
#define DSDE_ISA_NAME(name) DSDE_CAT(name, DSDE_ISA)

typedef void (*dsde_normal_blocks_f64_fn)(dsde_philox_key, uint32_t, uint32_t, uint64_t,
                                          int64_t, double *);
typedef void (*dsde_normal_blocks_f32_fn)(dsde_philox_key, uint32_t, uint32_t, uint64_t,
                                          int64_t, float *);
typedef void (*dsde_mixture_tile_fn)(int64_t K, int64_t d, int64_t width, const double *inv_c,
                                     const double *mmu, const double *lognorm,
                                     const double *xT, double *gT, double *scratch);

/* The empirical score's data, packed by diffsde/scores.py (EmpiricalData):
 * n points of d coordinates centred (points, row-major), the same in blocks
 * of DSDE_EMP_LANES points transposed (points_t[b][j][l] = point 8b + l,
 * zero past n), their squared norms (sq_norms, +inf past n) and the centre;
 * m and s of the evaluation; poll(poll_arg) nonzero stops early. */
#define DSDE_EMP_ROWS 4     /* rows per group of the empirical kernel */
#define DSDE_EMP_POINTS 256 /* points per pass (a multiple of 8) */
typedef struct {
    int64_t n, d;
    double m, s;
    const double *points, *points_t, *sq_norms, *center;
    int (*poll)(void *);
    void *poll_arg;
} dsde_emp_args;
/* DSDE_EMP_ROWS rows (nrows of them real) -> their scores g; work:
 * DSDE_EMP_ROWS (2 d + DSDE_EMP_POINTS + 8) + DSDE_EMP_POINTS doubles */
typedef void (*dsde_empirical_rows_fn)(const dsde_emp_args *a, const double *x, int64_t nrows,
                                       double *g, double *work);

/* The mixture (isotropic/diagonal) for one row: csrc/mixture_kernel.h. */
typedef struct {
    int64_t K, d;
    double m, s;
    const double *means, *lambdas, *uniform, *lognorm;
} dsde_mix_row_args;
typedef void (*dsde_mixture_row_fn)(const dsde_mix_row_args *a, const double *x, double *g,
                                    double *icbuf, double *scratch);

typedef struct {
    const char *name;
    dsde_normal_blocks_f64_fn normal_f64; /* normals 2 b0 .. 2 (b0 + n) - 1 */
    dsde_normal_blocks_f32_fn normal_f32; /* normals 4 b0 .. 4 (b0 + n) - 1 */
    dsde_mixture_tile_fn mixture_tile;   /* scratch: (K + 2) width doubles */
    /* full covariances: inv_c is replaced by the K precision matrices (d x d);
     * scratch: (K + 2 + d + K d) width doubles */
    dsde_mixture_tile_fn mixture_full_tile;
    /* inv_c = 1 / (m^2 lambda + s^2), mmu = m mu, elementwise */
    void (*mixture_coefficients)(int64_t n, double m, double s, const double *lambdas,
                                 const double *means, double *inv_c, double *mmu);
    dsde_empirical_rows_fn empirical_rows;
    dsde_mixture_row_fn mixture_row; /* icbuf: K d doubles; scratch: K */
    /* the row kernels of step.h */
    int (*combine_f64)(double *, const double *const *, const double *, int, int64_t);
    int (*combine_f32)(float *, const float *const *, const double *, int, int64_t);
    int (*langevin_f64)(double *, const double *, const double *, const double *, int64_t,
                        int64_t, double, double);
    int (*langevin_f32)(float *, const float *, const float *, const float *, int64_t,
                        int64_t, double, double);
} dsde_simd_kernels;

/* Picks the best path the CPU supports; called once, at module import, so
 * that worker threads only ever read the choice. */
void dsde_simd_init(void);

/* The kernels in use: the one dsde_simd_init chose unless one was selected. */
const dsde_simd_kernels *dsde_simd(void);

/* Paths: "baseline", "avx2", "avx512" (x86-64). */
int dsde_simd_count(void);
const char *dsde_simd_name(int path);
int dsde_simd_supported(int path);
int dsde_simd_current(void);
/* The path dsde_simd_init chose; -1 before it ran. */
int dsde_simd_default(void);
/* 0 on success; -1 if the name is unknown or the CPU lacks it. */
int dsde_simd_select(const char *name);

#define DSDE_DECLARE_KERNELS(isa)                                              \
    void dsde_normal_blocks_f64_##isa(dsde_philox_key, uint32_t, uint32_t,     \
                                      uint64_t, int64_t, double *);            \
    void dsde_normal_blocks_f32_##isa(dsde_philox_key, uint32_t, uint32_t,     \
                                      uint64_t, int64_t, float *);             \
    void dsde_mixture_tile_##isa(int64_t, int64_t, int64_t, const double *,    \
                                 const double *, const double *,               \
                                 const double *, double *, double *);      \
    void dsde_mixture_full_tile_##isa(int64_t, int64_t, int64_t, const double *, \
                                      const double *, const double *,          \
                                      const double *, double *, double *);     \
    void dsde_mixture_coefficients_##isa(int64_t, double, double, const double *, \
                                         const double *, double *, double *);  \
    void dsde_empirical_rows_##isa(const dsde_emp_args *, const double *,      \
                                   int64_t, double *, double *);               \
    void dsde_mixture_row_##isa(const dsde_mix_row_args *, const double *,     \
                                double *, double *, double *);                 \
    int dsde_combine_f64_##isa(double *, const double *const *, const double *, \
                               int, int64_t);                                  \
    int dsde_combine_f32_##isa(float *, const float *const *, const double *,  \
                               int, int64_t);                                  \
    int dsde_langevin_f64_##isa(double *, const double *, const double *,      \
                                const double *, int64_t, int64_t, double, double); \
    int dsde_langevin_f32_##isa(float *, const float *, const float *,         \
                                const float *, int64_t, int64_t, double, double);
DSDE_DECLARE_KERNELS(baseline)
#if defined(__x86_64__) && defined(__GNUC__)
DSDE_DECLARE_KERNELS(avx2)
DSDE_DECLARE_KERNELS(avx512)
#endif

#endif
