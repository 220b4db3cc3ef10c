/*
 * The step kinds, applied to one block of the state (rows x dim elements).
 *
 *   affine         x  <- a x + b s(x, t) + c z
 *   heun_predict   xt <- a x + b s(x, t)                  (Euler predictor)
 *   heun_correct   x  <- x/2 + (a xt + b s(xt, t)) / 2     (trapezoidal corrector)
 *   langevin       x  <- x + eps s + sqrt(2 eps) z, per row
 *                  eps = 2 a (c |z| / |s|)^2             (a = r, c = snr;
 *                                                          eps = 0 when |s| = 0)
 *
 * A term whose coefficient is exactly zero is skipped: no score is evaluated
 * and no noise is drawn for it. Arithmetic is in the element type, with the
 * coefficients rounded to it once, in exactly the order written above; row
 * norms accumulate in double, left to right. Each kernel returns 1 when it
 * wrote a non-finite element (checked in the same pass), else 0.
 */
#ifndef DIFFSDE_STEP_H
#define DIFFSDE_STEP_H

#include <stdint.h>

enum dsde_step_kind {
    DSDE_AFFINE = 0,
    DSDE_HEUN_PREDICT = 1,
    DSDE_HEUN_CORRECT = 2,
    DSDE_LANGEVIN = 3,
    DSDE_N_KINDS = 4
};

/* s or z may be NULL exactly when b or c is zero. */
int dsde_affine_f64(double *x, const double *s, const double *z, int64_t n,
                     double a, double b, double c);
int dsde_affine_f32(float *x, const float *s, const float *z, int64_t n,
                     double a, double b, double c);

int dsde_heun_correct_f64(double *x, const double *xt, const double *s,
                           int64_t n, double a, double b);
int dsde_heun_correct_f32(float *x, const float *xt, const float *s,
                           int64_t n, double a, double b);

int dsde_langevin_f64(double *x, const double *s, const double *z,
                       int64_t rows, int64_t dim, double r, double snr);
int dsde_langevin_f32(float *x, const float *s, const float *z, int64_t rows,
                       int64_t dim, double r, double snr);

#endif
