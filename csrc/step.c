/* The row kernels of step.h, run on the instruction set simd.c chose (the
 * loops themselves are in step_kernel.h, compiled once per set in isa_*.c;
 * every set gives the same bits). */
#include <stdint.h>
#include "simd.h"
#include "step.h"

int
dsde_combine_f64(double *dst, const double *const *src, const double *w, int n, int64_t len)
{
    return dsde_simd()->combine_f64(dst, src, w, n, len);
}

int
dsde_combine_f32(float *dst, const float *const *src, const double *w, int n, int64_t len)
{
    return dsde_simd()->combine_f32(dst, src, w, n, len);
}

int
dsde_langevin_f64(double *out, const double *x, const double *s, const double *z, int64_t rows,
                  int64_t dim, double r, double snr)
{
    return dsde_simd()->langevin_f64(out, x, s, z, rows, dim, r, snr);
}

int
dsde_langevin_f32(float *out, const float *x, const float *s, const float *z, int64_t rows,
                  int64_t dim, double r, double snr)
{
    return dsde_simd()->langevin_f32(out, x, s, z, rows, dim, r, snr);
}
