/*
 * The row kernels (step.h) for one element type and instruction set. Each
 * per-ISA file (isa_*.c) includes this file once per type with DSDE_T (the
 * type), DSDE_SFX (f64_<isa> or f32_<isa>) and DSDE_NONFINITE (the test of
 * step_common.h for the type) defined, so every line below is a real line for
 * a debugger or a sanitizer. Plain loops: each compiler vectorizes them with
 * the instructions its file allows, IEEE operations in the same order, so
 * every path gives the same bits; step.c picks one at run time.
 */
#include "step_common.h"
#define DSDE_FN(name) DSDE_STEP_CAT(name, DSDE_SFX)

int
DSDE_FN(dsde_combine)(DSDE_T *dst, const DSDE_T *const *src, const double *w, int n, int64_t len)
{
    DSDE_T tw[DSDE_MAX_TERMS];
    uint64_t bad = 0;
    for (int k = 0; k < n; k++)
        tw[k] = (DSDE_T)w[k];
    /* Unrolled for the counts the built-in methods use (the compiler
     * vectorizes these); the general loop gives the same bits, term by term
     * left to right. Sources are read before dst[i] is written, so dst may
     * be any of them. */
    if (n == 1) {
        const DSDE_T *s0 = src[0];
        for (int64_t i = 0; i < len; i++) {
            DSDE_T v = tw[0] * s0[i];
            dst[i] = v;
            bad |= DSDE_NONFINITE(v);
        }
    }
    else if (n == 2) {
        const DSDE_T *s0 = src[0], *s1 = src[1];
        for (int64_t i = 0; i < len; i++) {
            DSDE_T v = tw[0] * s0[i] + tw[1] * s1[i];
            dst[i] = v;
            bad |= DSDE_NONFINITE(v);
        }
    }
    else if (n == 3) {
        const DSDE_T *s0 = src[0], *s1 = src[1], *s2 = src[2];
        for (int64_t i = 0; i < len; i++) {
            DSDE_T v = tw[0] * s0[i] + tw[1] * s1[i] + tw[2] * s2[i];
            dst[i] = v;
            bad |= DSDE_NONFINITE(v);
        }
    }
    else {
        for (int64_t i = 0; i < len; i++) {
            DSDE_T v = tw[0] * src[0][i];
            for (int k = 1; k < n; k++)
                v = v + tw[k] * src[k][i];
            dst[i] = v;
            bad |= DSDE_NONFINITE(v);
        }
    }
    return bad != 0;
}

int
DSDE_FN(dsde_langevin)(DSDE_T *out, const DSDE_T *x, const DSDE_T *s, const DSDE_T *z,
                       int64_t rows, int64_t dim, double r, double snr)
{
    uint64_t bad = 0;
    for (int64_t row = 0; row < rows; row++) {
        const int64_t o = row * dim;
        double zz = 0.0, ss = 0.0;
        for (int64_t i = 0; i < dim; i++) {
            zz += (double)z[o + i] * (double)z[o + i];
            ss += (double)s[o + i] * (double)s[o + i];
        }
        /* |s| = 0 (the row sits at a mode): the step size has no finite
         * value; the row stays put rather than become NaN. */
        double q = ss > 0.0 ? snr * sqrt(zz) / sqrt(ss) : 0.0;
        double eps = 2.0 * r * (q * q);
        const DSDE_T te = (DSDE_T)eps, tsd = (DSDE_T)sqrt(2.0 * eps);
        for (int64_t i = 0; i < dim; i++) {
            DSDE_T v = x[o + i] + te * s[o + i] + tsd * z[o + i];
            out[o + i] = v;
            bad |= DSDE_NONFINITE(v);
        }
    }
    return bad != 0;
}

#undef DSDE_FN
