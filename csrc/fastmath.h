/*
 * The Box-Muller transform without libm, in plain double arithmetic that
 * compilers vectorize (no -ffast-math): every operation is an IEEE add, mul,
 * div or sqrt in a fixed order, and integer bit manipulation, so a scalar,
 * SSE2, AVX2 or AVX-512 evaluation gives the same bits.
 *
 * Inputs are the integers behind the uniforms, which makes both reductions
 * exact:
 *
 *   log u1, u1 = A 2^-B with the integer A in [1, 2^B]:
 *       A = 2^e m with m in [sqrt(1/2), sqrt(2)),  f = (m - 1)/(m + 1),
 *       log m = 2 atanh f = 2f (1 + f^2/3 + f^4/5 + ... + f^20/21),
 *       log u1 = (e - B) ln 2 + log m   (ln 2 split in a high and a low part)
 *   sin, cos of 2 pi u2, u2 = b 2^-B with the integer b in [0, 2^B):
 *       the top two bits of b are the quadrant, the next the octant; the
 *       remaining integer gives x in [0, pi/4] with one rounding, and
 *       Taylor polynomials to x^17 (sin) and x^16 (cos) finish it.
 *
 * Accuracy against libm (tests/test_rng.py): log within 2 ulp, sin and cos
 * of the reduced angle within 2 ulp, over the whole input range.
 */
#ifndef DIFFSDE_FASTMATH_H
#define DIFFSDE_FASTMATH_H

#include <stdint.h>
#include <string.h>

#include "exp2_table.h"

#define DSDE_TWO52 4503599627370496.0
#define DSDE_MAGIC_BITS UINT64_C(0x4330000000000000)
#define DSDE_LN2_HI 6.93147180369123816490e-01 /* ln 2 to 32 bits: n ln2_hi is exact */
#define DSDE_LN2_LO 1.90821492927058770002e-10 /* ln 2 - ln2_hi */
#define DSDE_SQRT2 1.41421356237309504880
#define DSDE_PI_2 1.57079632679489661923

static inline double
dsde_bits_to_double(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static inline uint64_t
dsde_double_to_bits(double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return bits;
}

/* Exact for x < 2^52 (the 2^52 + x trick; no int64 -> double instruction
 * needed, which AVX2 lacks). */
static inline double
dsde_small_to_double(uint64_t x)
{
    return dsde_bits_to_double(DSDE_MAGIC_BITS | x) - DSDE_TWO52;
}

/* a where mask is all ones, b where it is zero (a branch-free select that
 * AVX2 can vectorize for 64-bit lanes). */
static inline double
dsde_select(uint64_t mask, double a, double b)
{
    return dsde_bits_to_double((dsde_double_to_bits(a) & mask) | (dsde_double_to_bits(b) & ~mask));
}

/* log(A 2^-B) for the integer A in [1, 2^53] in two halves, so a caller can
 * run each over many lanes in a loop of its own (see normal_kernel.h):
 * dsde_log_reduce gives n and f, dsde_log_finish the series. */
static inline void
dsde_log_reduce(uint64_t A, int B, double *n_out, double *f_out)
{
    double a = 4.0 * dsde_small_to_double(A >> 2) + dsde_small_to_double(A & 3); /* A = 2^53 too */
    uint64_t bits = dsde_double_to_bits(a);
    uint64_t mantissa = bits & UINT64_C(0x000FFFFFFFFFFFFF);
    double m = dsde_bits_to_double(mantissa | UINT64_C(0x3FF0000000000000));
    /* m > sqrt 2 exactly when the mantissa field exceeds sqrt 2's (0x6A09E667F3BCD) */
    uint64_t big = (UINT64_C(0x6A09E667F3BCD) - mantissa) >> 63;
    double bigd = dsde_small_to_double(big);
    m = m * (1.0 - 0.5 * bigd);
    *n_out = dsde_small_to_double(bits >> 52) + bigd - (double)(1023 + B);
    *f_out = (m - 1.0) / (m + 1.0);
}

static inline double
dsde_log_finish(double n, double f)
{
    double s = f * f;
    double series =
        1.0 / 3 + s * (1.0 / 5 + s * (1.0 / 7 + s * (1.0 / 9 + s * (1.0 / 11 + s * (1.0 / 13
        + s * (1.0 / 15 + s * (1.0 / 17 + s * (1.0 / 19 + s * (1.0 / 21)))))))));
    double h = 2.0 * f;
    double log_m = h + h * (s * series);
    return n * DSDE_LN2_HI + (n * DSDE_LN2_LO + log_m);
}

static inline double
dsde_log_scaled(uint64_t A, int B)
{
    double n, f;
    dsde_log_reduce(A, B, &n, &f);
    return dsde_log_finish(n, f);
}

/* sin and cos of 2 pi b 2^-B for the integer b in [0, 2^B), B <= 53. */
static inline void
dsde_sincos_turns(uint64_t b, int B, double *sin_out, double *cos_out)
{
    const uint64_t quarter = UINT64_C(1) << (B - 2);
    uint64_t q = b >> (B - 2);
    uint64_t rho = b & (quarter - 1);
    uint64_t upper = UINT64_C(0) - (rho >> (B - 3)); /* all ones in the upper octant */
    uint64_t folded = (rho & ~upper) | ((quarter - rho) & upper); /* in [0, 2^(B-3)] */
    double x = dsde_small_to_double(folded) * (DSDE_PI_2 / (double)quarter);
    double z = x * x;
    double sin_x = x + x * (z * (-1.0 / 6 + z * (1.0 / 120 + z * (-1.0 / 5040
        + z * (1.0 / 362880 + z * (-1.0 / 39916800 + z * (1.0 / 6227020800.0
        + z * (-1.0 / 1307674368000.0 + z * (1.0 / 355687428096000.0)))))))));
    double cos_x = 1.0 + z * (-1.0 / 2 + z * (1.0 / 24 + z * (-1.0 / 720
        + z * (1.0 / 40320 + z * (-1.0 / 3628800 + z * (1.0 / 479001600.0
        + z * (-1.0 / 87178291200.0 + z * (1.0 / 20922789888000.0))))))));
    /* angle = q pi/2 + phi, phi = x or pi/2 - x */
    double sin_phi = dsde_select(upper, cos_x, sin_x), cos_phi = dsde_select(upper, sin_x, cos_x);
    uint64_t odd = UINT64_C(0) - (q & 1);
    double s = dsde_select(odd, cos_phi, sin_phi), c = dsde_select(odd, sin_phi, cos_phi);
    *sin_out = dsde_bits_to_double(dsde_double_to_bits(s) ^ ((q >> 1) << 63));
    *cos_out = dsde_bits_to_double(dsde_double_to_bits(c) ^ ((((q >> 1) ^ q) & 1) << 63));
}

/* exp(x) for x in [-750, 0] (the weights of a log-sum-exp, clamped by the
 * caller in a loop of its own: a clamp inside this function keeps AVX2 from
 * vectorizing it). Tang's table-driven reduction (P. T. P. Tang, ACM TOMS
 * 15(2), 1989), without fused operations:
 *
 *   x = (128 e + j) ln(2)/128 + r,  |r| <= ln(2)/256,  j in [0, 128),
 *   exp x = 2^e 2^(j/128) e^r,  e^r = 1 + q,
 *   q = r + r^2 (1/2 + r (1/6 + r (1/24 + r/120)))  (truncation below 2^-60),
 *   p = T_j + T_j q  with T_j = 2^(j/128) rounded (exp2_table.h).
 *
 * The integer n = 128 e + j comes from the 1.5 2^52 rounding trick; ln(2)/128
 * is split in a high part with 32 significant bits, so n ln2_hi/128 is exact
 * for |n| < 2^21. 2^e is applied as 2^h 2^(e-h), h = e/2 rounded, both
 * factors normal: the first product is exact and the second rounds once, so
 * results below 2^-1022 are the correctly rounded subnormals of p 2^e and
 * x < -745.2 gives exactly 0, as libm does. Within 1 ulp of the correctly
 * rounded value, which 83% of results equal (tests/test_scores.py). Against
 * a Taylor series to r^13 on |r| <= ln(2)/2 it costs 37 operations instead of
 * 45, and its longest dependency chain is 10 operations instead of 30: the
 * mixture steps run about 20% faster, which is what makes it worth a table.
 *
 * dsde_exp_reduce is the part shared with dsde_exp_nonpositive_normal below:
 * p = T_j + T_j q, and the integer n = 128 e + j as the double n and as
 * n mod 2^64. */
#define DSDE_ROUND_SHIFT 6755399441055744.0 /* 1.5 2^52: adding it rounds to an integer */

static inline double
dsde_exp_reduce(double x, double *n_out, uint64_t *n_int_out)
{
    const double shift = DSDE_ROUND_SHIFT;
    const double size = (double)(1 << DSDE_EXP2_TABLE_BITS);
    double t = x * (size * 1.44269504088896340736) + shift;
    double n = t - shift;
    double r = (x - n * (DSDE_LN2_HI / size)) - n * (DSDE_LN2_LO / size);
    uint64_t n_int = dsde_double_to_bits(t) - dsde_double_to_bits(shift);
    uint64_t j = n_int & ((1u << DSDE_EXP2_TABLE_BITS) - 1);
    double q = r + (r * r) * (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120))));
    double table_j = dsde_exp2_table[j];
    *n_out = n;
    *n_int_out = n_int;
    return table_j + table_j * q;
}

static inline double
dsde_exp_nonpositive(double x)
{
    const double shift = DSDE_ROUND_SHIFT;
    const double size = (double)(1 << DSDE_EXP2_TABLE_BITS);
    double n;
    uint64_t n_int;
    double p = dsde_exp_reduce(x, &n, &n_int);
    uint64_t j = n_int & ((1u << DSDE_EXP2_TABLE_BITS) - 1);
    double e = (n - dsde_small_to_double(j)) * (1.0 / size); /* exact: n - j is a multiple of 128 */
    double te = e + shift, th = e * 0.5 + shift;
    uint64_t h_int = dsde_double_to_bits(th) - dsde_double_to_bits(shift); /* h mod 2^64 */
    uint64_t rest_int = dsde_double_to_bits(te) - dsde_double_to_bits(shift) - h_int; /* e - h */
    return (p * dsde_bits_to_double((h_int + 1023) << 52)) *
           dsde_bits_to_double((rest_int + 1023) << 52);
}

/* dsde_exp_nonpositive(x), bit for bit, for x in [DSDE_EXP_NORMAL_FLOOR, 0]
 * only, in 12 fewer operations (16 against 4 after the shared reduction) and
 * without the caller's clamp: there e >= -1022, so 2^e is a normal double
 * and the single product p 2^e is the correctly rounded value that the two
 * factors give (subnormal results included). 2^e comes from the integer n
 * directly: e + 1023 = (n + 1023 * 128) >> 7, a nonnegative integer there. */
#define DSDE_EXP_NORMAL_FLOOR -708.0 /* n >= round(-708 * 128 / ln 2) > -1022 * 128 */

/* Weights e^v of a log-sum-exp with v below this are 0 in double: the clamp
 * only keeps the exponent arithmetic of dsde_exp_nonpositive in range. */
#define DSDE_EXP_FLOOR -750.0

static inline double
dsde_exp_nonpositive_normal(double x)
{
    double n;
    uint64_t n_int;
    double p = dsde_exp_reduce(x, &n, &n_int);
    uint64_t bias = (uint64_t)1023 << DSDE_EXP2_TABLE_BITS;
    return p * dsde_bits_to_double(((n_int + bias) >> DSDE_EXP2_TABLE_BITS) << 52);
}

/* v[i] <- e^max(v[i], DSDE_EXP_FLOOR) for the n log-weights v[i] <= 0 of a
 * log-sum-exp, in place: the same bits as dsde_exp_nonpositive after the
 * clamp, through the shorter exp when all n are in its range (most blocks:
 * a weight below e^-708 only arises once the components have separated). The
 * clamp is a bit select so that the loop vectorizes (a ?: would not on AVX2).
 * Each weight is computed on its own: n and the path change no bit. */
static inline void
dsde_exp_weights(double *v, int64_t n)
{
    uint64_t below_normal = 0;
    for (int64_t i = 0; i < n; i++)
        below_normal |= UINT64_C(0) - (uint64_t)(v[i] < DSDE_EXP_NORMAL_FLOOR);
    if (!below_normal) {
        for (int64_t i = 0; i < n; i++)
            v[i] = dsde_exp_nonpositive_normal(v[i]);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        uint64_t low = UINT64_C(0) - (uint64_t)(v[i] < DSDE_EXP_FLOOR);
        v[i] = dsde_exp_nonpositive(dsde_select(low, DSDE_EXP_FLOOR, v[i]));
    }
}

#endif
