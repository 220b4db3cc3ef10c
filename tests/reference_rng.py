"""A slow, independent NumPy twin of diffsde's generator, for the tests.

Written from the published algorithm, not from csrc/:

* Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as
  easy as 1, 2, 3", SC'11; Random123's ``philox4x32``): ten rounds of

      (c0, c1, c2, c3) -> (hi(M1 c2) ^ c1 ^ k0, lo(M1 c2),
                           hi(M0 c0) ^ c3 ^ k1, lo(M0 c0))

  with the key bumped by the Weyl constants (W0, W1) between rounds.
* Box-Muller: z = sqrt(-2 log u1) (cos 2 pi u2, sin 2 pi u2), u1 in (0, 1],
  with 53-bit uniforms for float64 (one Philox call -> 2 normals) and 32-bit
  uniforms for float32 (one call -> 4 normals, evaluated in double, rounded
  once). log, sin and cos are evaluated as csrc/fastmath.h defines them
  (exact integer reductions, then series), so the twin can match the C
  bits; ``test_rng.py`` checks these evaluations against libm.
* Counter layout (csrc/rng.h): key = (low 32, high 32) of the 64-bit key,
  counter = (block low 32, block high 32, k, stream), block = j // per_block.

All integer arithmetic is done in uint64 so that 32 x 32-bit products are
exact; ``& MASK32`` is the reduction mod 2^32. sqrt, +, *, / are correctly
rounded everywhere, so the same operations in the same order give the same
bits as C.
"""
import math

import numpy as np

MASK32 = np.uint64(0xFFFFFFFF)
PHILOX_M = (np.uint64(0xD2511F53), np.uint64(0xCD9E8D57))  # multipliers
PHILOX_W = (np.uint64(0x9E3779B9), np.uint64(0xBB67AE85))  # Weyl key bumps
PER_BLOCK = {np.dtype(np.float64): 2, np.dtype(np.float32): 4}


def _mulhilo(m, x):
    p = m * x  # < 2^64: exact in uint64
    return p >> np.uint64(32), p & MASK32


def philox4x32_10(counters, key):
    """Philox4x32-10 of each row of ``counters`` (n, 4) under ``key`` (2,)."""
    c = [col.astype(np.uint64) for col in np.asarray(counters, np.uint64).reshape(-1, 4).T]
    k0, k1 = (np.uint64(int(w)) for w in key)
    for rnd in range(10):
        if rnd:
            k0 = (k0 + PHILOX_W[0]) & MASK32
            k1 = (k1 + PHILOX_W[1]) & MASK32
        hi0, lo0 = _mulhilo(PHILOX_M[0], c[0])
        hi1, lo1 = _mulhilo(PHILOX_M[1], c[2])
        c = [hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0]
    return np.stack(c, axis=1).astype(np.uint32)


ONE_BITS = np.uint64(0x3FF0000000000000)
MANTISSA = np.uint64(0x000FFFFFFFFFFFFF)
SQRT2_MANTISSA = np.uint64(0x6A09E667F3BCD)  # the mantissa field of sqrt(2) as a double
LN2_HI, LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10


def log_scaled(A, B):
    """log(A 2^-B) for integers A in [1, 2^53], the way csrc/fastmath.h
    evaluates it: A = 2^e m, m folded into [sqrt(1/2), sqrt(2)), and
    log m = 2 atanh((m - 1)/(m + 1)) by its series to f^21."""
    a = np.asarray(A, np.uint64).astype(np.float64)  # exact below 2^53
    bits = a.view(np.uint64)
    mantissa = bits & MANTISSA
    m = (mantissa | ONE_BITS).view(np.float64)
    big = (mantissa > SQRT2_MANTISSA).astype(np.float64)
    m = m * (1.0 - 0.5 * big)
    n = (bits >> np.uint64(52)).astype(np.float64) + big - float(1023 + B)
    f = (m - 1.0) / (m + 1.0)
    s = f * f
    series = 1.0 / 21
    for odd in (19, 17, 15, 13, 11, 9, 7, 5, 3):
        series = 1.0 / odd + s * series
    h = 2.0 * f
    return n * LN2_HI + (n * LN2_LO + (h + h * (s * series)))


SIN_COEFFS = [(-1.0) ** i / math.factorial(2 * i + 1) for i in range(1, 9)]  # x^3 .. x^17
COS_COEFFS = [(-1.0) ** i / math.factorial(2 * i) for i in range(1, 9)]      # x^2 .. x^16


def reduced_angle(b, B):
    """(quadrant, upper-octant flag, x in [0, pi/4]) of 2 pi b 2^-B."""
    b = np.asarray(b, np.uint64)
    quarter = np.uint64(1) << np.uint64(B - 2)
    q = b >> np.uint64(B - 2)
    rho = b & (quarter - np.uint64(1))
    upper = (rho >> np.uint64(B - 3)) == 1
    folded = np.where(upper, quarter - rho, rho)
    return q, upper, folded.astype(np.float64) * ((math.pi / 2) / float(quarter))


def sin_cos_polynomials(x):
    z = x * x
    sin_series, cos_series = SIN_COEFFS[-1], COS_COEFFS[-1]
    for cs, cc in zip(SIN_COEFFS[-2::-1], COS_COEFFS[-2::-1]):
        sin_series = cs + z * sin_series
        cos_series = cc + z * cos_series
    return x + x * (z * sin_series), 1.0 + z * cos_series


def sincos_turns(b, B):
    """sin and cos of 2 pi b 2^-B from the quadrant, the octant and the
    Taylor polynomials on [0, pi/4]."""
    q, upper, x = reduced_angle(b, B)
    sin_x, cos_x = sin_cos_polynomials(x)
    sin_phi, cos_phi = np.where(upper, cos_x, sin_x), np.where(upper, sin_x, cos_x)
    odd = (q & np.uint64(1)) == 1
    s, c = np.where(odd, cos_phi, sin_phi), np.where(odd, sin_phi, cos_phi)
    s = np.where((q >> np.uint64(1)) == 1, -s, s)
    c = np.where(((q >> np.uint64(1)) ^ q) & np.uint64(1) == 1, -c, c)
    return s, c


def box_muller(words, dtype):
    """Normals from Philox words (n, 4): (n, 2) float64 or (n, 4) float32."""
    w = np.asarray(words, np.uint64).reshape(-1, 4)
    if np.dtype(dtype) == np.float64:
        # Two 53-bit integers from the top of the 64-bit words (w1:w0), (w3:w2).
        a = ((w[:, 1] << np.uint64(32)) | w[:, 0]) >> np.uint64(11)
        b = ((w[:, 3] << np.uint64(32)) | w[:, 2]) >> np.uint64(11)
        r = np.sqrt(-2.0 * log_scaled(a + np.uint64(1), 53))
        s, c = sincos_turns(b, 53)
    else:  # pairs (w0, w1), (w2, w3), 32-bit uniforms
        r = np.sqrt(-2.0 * log_scaled(w[:, 0::2] + np.uint64(1), 32))
        s, c = sincos_turns(w[:, 1::2], 32)
    z = np.stack([r * c, r * s], axis=-1)  # (.., cos, sin)
    return z.reshape(len(w), -1).astype(dtype)


def counters(block, k, stream):
    """Philox counters (n, 4) of blocks ``block`` of interval k, stream."""
    block = np.asarray(block, np.uint64).reshape(-1)
    return np.stack(
        [block & MASK32, block >> np.uint64(32),
         np.full_like(block, k), np.full_like(block, stream)], axis=1)


def key_words(key):
    """The two 32-bit Philox key words (low, high) of a 64-bit key."""
    return np.array([key & 0xFFFFFFFF, key >> 32], np.uint32)


def normal(key, stream, k, j, dtype=np.float64):
    """Normals number ``j`` (array of non-negative ints) of (key, stream, k)."""
    dtype = np.dtype(dtype)
    per = PER_BLOCK[dtype]
    j = np.asarray(j, np.uint64).reshape(-1)
    block, elem = j // np.uint64(per), (j % np.uint64(per)).astype(np.intp)
    z = box_muller(philox4x32_10(counters(block, k, stream), key_words(key)), dtype)
    return z[np.arange(len(j)), elem]
