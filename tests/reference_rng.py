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
  once).
* Counter layout (csrc/rng.h): key = (low 32, high 32) of the 64-bit key,
  counter = (block low 32, block high 32, k, stream), block = j // per_block.

All integer arithmetic is done in uint64 so that 32 x 32-bit products are
exact; ``& MASK32`` is the reduction mod 2^32. log, cos and sin are Python's
``math`` functions, i.e. the platform C library's, as in csrc/: NumPy's own
SIMD ``np.log`` differs from glibc's by an ulp on ~0.2% of arguments, which
would make bit-for-bit comparisons impossible. sqrt, + and * are correctly
rounded everywhere.
"""
import math

import numpy as np

MASK32 = np.uint64(0xFFFFFFFF)
PHILOX_M = (np.uint64(0xD2511F53), np.uint64(0xCD9E8D57))  # multipliers
PHILOX_W = (np.uint64(0x9E3779B9), np.uint64(0xBB67AE85))  # Weyl key bumps
PER_BLOCK = {np.dtype(np.float64): 2, np.dtype(np.float32): 4}


def _libm(f):
    ufunc = np.frompyfunc(f, 1, 1)
    return lambda x: ufunc(x).astype(np.float64)


_log, _cos, _sin = _libm(math.log), _libm(math.cos), _libm(math.sin)


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


def box_muller(words, dtype):
    """Normals from Philox words (n, 4): (n, 2) float64 or (n, 4) float32."""
    w = np.asarray(words, np.uint64).reshape(-1, 4)
    if np.dtype(dtype) == np.float64:
        # Two 53-bit integers from the top of the 64-bit words (w1:w0), (w3:w2).
        a = ((w[:, 1] << np.uint64(32)) | w[:, 0]) >> np.uint64(11)
        b = ((w[:, 3] << np.uint64(32)) | w[:, 2]) >> np.uint64(11)
        u1 = (a.astype(np.float64) + 1.0) * 2.0**-53  # (0, 1]
        u2 = b.astype(np.float64) * 2.0**-53  # [0, 1)
    else:
        u1 = (w[:, 0::2].astype(np.float64) + 1.0) * 2.0**-32  # pairs (w0, w1),
        u2 = w[:, 1::2].astype(np.float64) * 2.0**-32  # (w2, w3)
    r = np.sqrt(-2.0 * _log(u1))
    theta = (2.0 * np.pi) * u2
    z = np.stack([r * _cos(theta), r * _sin(theta)], axis=-1)  # (.., cos, sin)
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
