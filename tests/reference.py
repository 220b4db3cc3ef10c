"""Slow NumPy twins of the C kernels: the test oracle for the driver.

Each twin does the arithmetic of csrc/step.c and csrc/scores.c in the same
order and the same element type, one table row at a time over the whole
batch, so float64 results must agree with the C driver to the last bit.
"""
import numpy as np

from diffsde import _core
from diffsde._steptable import KINDS


def normals(key, stream, k, shape, dtype):
    """Normals j = 0 .. size-1 of (key, stream, k), from the C generator
    (itself checked against an independent twin in test_rng.py)."""
    out = np.empty(shape, dtype=dtype)
    _core.fill_normal(out, key, stream, k, 0, 1)
    return out


def linear_score(x, m, s, mean, var0):
    """(m mu - x) / (m^2 var0 + s^2), with mean and variance rounded once."""
    dtype = x.dtype.type
    mu = (m * np.asarray(mean, np.float64)).astype(dtype)
    var = (m * m * np.asarray(var0, np.float64) + s * s).astype(dtype)
    return (mu - x) / var


def row_norm(v):
    """Euclidean norm of each row, summed left to right in double."""
    return np.sqrt(np.cumsum(v.astype(np.float64) ** 2, axis=1)[:, -1])


def run_table(x, table, key, *, score=None, noise=None):
    """Run a StepTable on x of shape (batch, dim); return the list of states
    after every row (index 0 = initial state).

    ``score(x, t, m, s)`` returns the score; ``noise`` replaces stream 0.
    """
    T = x.dtype.type
    x = x.copy()
    xt = None
    states = [x.copy()]
    for r in range(table.n_rows):
        kind, a, b, c = int(table.kind[r]), table.a[r], table.b[r], table.c[r]
        stream, k = int(table.stream[r]), int(table.interval[r])
        ta, tb, tc = T(a), T(b), T(c)
        s = z = None
        if kind == KINDS["langevin"] or b != 0:
            at = xt if kind == KINDS["heun_correct"] else x
            s = score(at, table.t[r], table.m[r], table.s[r])
        if kind == KINDS["langevin"] or (kind == KINDS["affine"] and c != 0):
            z = noise[k] if (stream == 0 and noise is not None) else normals(key, stream, k, x.shape, x.dtype)
        if kind == KINDS["affine"]:
            new = ta * x
            if s is not None:
                new = new + tb * s
            if z is not None:
                new = new + tc * z
            x = new
        elif kind == KINDS["heun_predict"]:
            xt = ta * x if s is None else ta * x + tb * s
        elif kind == KINDS["heun_correct"]:
            half = T(0.5)
            inner = ta * xt if s is None else ta * xt + tb * s
            x = half * x + half * inner
        elif kind == KINDS["langevin"]:
            norm_s = row_norm(s)
            q = np.where(norm_s > 0, c * row_norm(z) / np.where(norm_s > 0, norm_s, 1.0), 0.0)
            eps = 2.0 * a * (q * q)
            te = eps.astype(x.dtype)[:, None]
            tsd = np.sqrt(2.0 * eps).astype(x.dtype)[:, None]
            x = x + te * s + tsd * z
        states.append(x.copy())
    return states


def table_moments(table, mean, var, mu, v0, every_step=False):
    """Exact output moments of a score-free-of-Langevin table run on Gaussian
    data N(mu, v0) with the exact (linear) score, from x ~ N(mean, var):
    m <- (a + b l) m + b r,  v <- (a + b l)^2 v + c^2  (docs/methods.md),
    with l = -1/V(t), r = m(t) mu / V(t), V = m(t)^2 v0 + s(t)^2.
    Heun's two stages compose into one affine map. With ``every_step`` the
    moments after each step are returned too."""

    def linear(r):
        big_v = table.m[r] ** 2 * v0 + table.s[r] ** 2
        return table.a[r] - table.b[r] / big_v, table.b[r] * table.m[r] * mu / big_v

    history = [(mean, var)]
    r = 0
    while r < table.n_rows:
        kind = int(table.kind[r])
        if kind == KINDS["affine"]:
            A, B = linear(r)
            mean, var = A * mean + B, A * A * var + table.c[r] ** 2
            r += 1
        elif kind == KINDS["heun_predict"]:
            A1, B1 = linear(r)
            A2, B2 = linear(r + 1)
            coef, const = 0.5 + 0.5 * A2 * A1, 0.5 * (A2 * B1 + B2)
            mean, var = coef * mean + const, coef * coef * var
            r += 2
        else:
            raise ValueError("table_moments handles affine and Heun rows only")
        history.append((mean, var))
    return history if every_step else (mean, var)


def empirical_score(x, points, m, s):
    """Slow twin of the smoothed empirical score: a loop over the points."""
    x = np.asarray(x, dtype=np.float64)
    rows = x[:, None] if x.ndim == 1 else x
    logits = np.stack([-np.sum((rows - m * p) ** 2, axis=1) / (2 * s * s) for p in points], axis=1)
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    out = sum(weights[:, [i]] * (m * p - rows) for i, p in enumerate(points)) / (s * s)
    return out[:, 0] if x.ndim == 1 else out


def score_in_c(score, x, m, s, dtype=np.float64):
    """The built-in score evaluated by the C driver: one row x <- score(x)."""
    import diffsde as ds

    table = ds.StepTable.affine([0.0], 1.0, 0.0, t=0.5, m=m, s=s)
    return ds.run_steps(np.asarray(x, dtype=dtype), table, score=score).x


def exp_nonpositive(x):
    """Twin of csrc/fastmath.h's exp for x in [-750, 0]: x = n ln 2 + r,
    Taylor series of e^r to r^13, times 2^h then 2^(n-h), h = n/2 rounded
    (one rounding into the subnormals)."""
    import math

    shift = 6755399441055744.0
    x = np.asarray(x, dtype=np.float64)
    t = x * 1.44269504088896340736 + shift
    n = t - shift
    r = (x - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10
    p = 1.0 / math.factorial(13)
    for k in range(12, -1, -1):
        p = 1.0 / math.factorial(k) + r * p
    h = np.round(n * 0.5)
    return (p * np.ldexp(1.0, h.astype(np.int64))) * np.ldexp(1.0, (n - h).astype(np.int64))


def uniforms(key, stream, k, j):
    """Twin of csrc/rng.c's float64 uniforms: uniform j of (key, stream, k)
    is word pair j % 2 of Philox block j // 2, (hi << 32 | lo) >> 11, times
    2^-53 (exact: a 53-bit integer times a power of two)."""
    from reference_rng import counters, key_words, philox4x32_10

    j = np.asarray(j, np.uint64).reshape(-1)
    w = philox4x32_10(counters(j // np.uint64(2), k, stream), key_words(key)).astype(np.uint64)
    e = (j % np.uint64(2)).astype(np.intp)
    rows = np.arange(len(j))
    bits = ((w[rows, 2 * e + 1] << np.uint64(32)) | w[rows, 2 * e]) >> np.uint64(11)
    return bits.astype(np.float64) * 2.0**-53
