"""Slow NumPy twins of the C kernels: the test oracle for the driver.

Each twin does the arithmetic of csrc/step.c and csrc/scores.c in the same
order and the same element type, one table row at a time over the whole
batch, so results must agree with the C driver to the last bit (float32 and
float64). The table interpreter has one function per row kind.
"""
import numpy as np

from diffsde import _core


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


def _weights(w, T):
    return [T(v) for v in w]


def _row_score(regs, row, table, T, score, noise, key):
    """score: reg[dst] = w0 reg[src0] + w1 s(reg[src0], t); a term of weight
    exactly 0 is absent."""
    src, (w0, w1) = int(table.src[row, 0]), _weights(table.w[row, :2], T)
    s = score(regs[src], table.t[row], table.m[row], table.sd[row])
    return w1 * s if table.w[row, 0] == 0 else w0 * regs[src] + w1 * s


def _row_normal(regs, row, table, T, score, noise, key):
    """normal: normals of (key, stream, interval), or noise[interval] for stream 0."""
    stream, k = int(table.stream[row]), int(table.interval[row])
    x = regs[0]
    if stream == 0 and noise is not None:
        return noise[k]
    return normals(key, stream, k, x.shape, x.dtype)


def _row_combine(regs, row, table, T, score, noise, key):
    """combine: w0 reg[src0] + w1 reg[src1] + ..., left to right."""
    n = int(np.count_nonzero(table.src[row] >= 0))
    w = _weights(table.w[row, :n], T)
    out = w[0] * regs[int(table.src[row, 0])]
    for k in range(1, n):
        out = out + w[k] * regs[int(table.src[row, k])]
    return out


def _row_langevin(regs, row, table, T, score, noise, key):
    """langevin: x + e s + sqrt(2 e) z per batch row, e = 2 r (snr |z| / |s|)^2."""
    x, s, z = (regs[int(i)] for i in table.src[row, :3])
    r, snr = table.w[row, 0], table.w[row, 1]
    norm_s = row_norm(s)
    q = np.where(norm_s > 0, snr * row_norm(z) / np.where(norm_s > 0, norm_s, 1.0), 0.0)
    eps = 2.0 * r * (q * q)
    te = eps.astype(x.dtype)[:, None]
    tsd = np.sqrt(2.0 * eps).astype(x.dtype)[:, None]
    return x + te * s + tsd * z


#: One function per row kind, by the codes the C core exports.
ROW_FUNCTIONS = {_core.ROW_KINDS["score"]: _row_score, _core.ROW_KINDS["normal"]: _row_normal,
                 _core.ROW_KINDS["combine"]: _row_combine, _core.ROW_KINDS["langevin"]: _row_langevin}


def run_table(x, table, key, *, score=None, noise=None):
    """Run a StepTable on x of shape (batch, dim); return the list of states
    (register 0) after every row (index 0 = initial state).

    ``score(x, t, m, sd)`` returns the score; ``noise`` replaces stream 0.
    """
    T = x.dtype.type
    regs = [x.copy()] + [np.zeros_like(x) for _ in range(table.n_registers - 1)]
    states = [x.copy()]
    with np.errstate(all="ignore"):
        for r in range(table.n_rows):
            value = ROW_FUNCTIONS[int(table.kind[r])](regs, r, table, T, score, noise, key)
            regs[int(table.dst[r])] = np.asarray(value, dtype=x.dtype).copy()
            states.append(regs[0].copy())
    return states


def table_moments(table, mean, var, mu, v0, every_step=False):
    """Exact output moments of a table run on Gaussian data N(mu, v0) with
    the exact (linear) score, from x ~ N(mean, var) (docs/methods.md): every
    register is then an affine function of the initial state and the
    normals drawn, so it is tracked as a constant plus a vector of
    coefficients on independent standard normals (the initial state's, and
    one per (stream, interval) drawn; a pair drawn twice is the same normal).
    The score is s(y) = (m(t) mu - y)/V, V = m(t)^2 v0 + sd(t)^2. Langevin
    rows, whose step size depends on the sample, raise. With ``every_step``
    the moments after each step are returned too."""
    kinds = _core.ROW_KINDS
    known = {kinds["score"], kinds["normal"], kinds["combine"]}
    if not set(np.unique(table.kind).tolist()) <= known:
        raise ValueError("table_moments handles score, normal and combine rows only")
    normal = {}  # (stream, interval) -> its coefficient's index; 0 is the initial state's
    for r in np.flatnonzero(table.kind == kinds["normal"]):
        normal.setdefault((int(table.stream[r]), int(table.interval[r])), len(normal) + 1)
    mean, var = np.asarray(mean, np.float64) * 1.0, np.asarray(var, np.float64)
    coef = np.zeros((len(normal) + 1,) + var.shape)
    coef[0] = np.sqrt(var)
    regs = {0: (mean, coef)}
    history = [(mean, var)]
    last = set(table.last_row_of_step().tolist())

    def scaled(reg, w):
        return w * reg[0], w * reg[1]

    def added(p, q):
        return p[0] + q[0], p[1] + q[1]

    for r in range(table.n_rows):
        kind, w = int(table.kind[r]), table.w[r]
        if kind == kinds["score"]:
            y = regs[int(table.src[r, 0])]
            big_v = table.m[r] ** 2 * v0 + table.sd[r] ** 2
            s = (-1.0 / big_v * y[0] + table.m[r] * mu / big_v, -1.0 / big_v * y[1])
            value = scaled(s, w[1]) if w[0] == 0 else added(scaled(y, w[0]), scaled(s, w[1]))
        elif kind == kinds["normal"]:
            unit = np.zeros_like(coef)
            unit[normal[(int(table.stream[r]), int(table.interval[r]))]] = 1.0
            value = (0.0, unit)
        else:
            n = int(np.count_nonzero(table.src[r] >= 0))
            value = scaled(regs[int(table.src[r, 0])], w[0])
            for k in range(1, n):
                value = added(value, scaled(regs[int(table.src[r, k])], w[k]))
        regs[int(table.dst[r])] = value
        if r in last:
            const, c = regs[0]
            history.append((const, np.sum(c * c, axis=0)))
    return history if every_step else history[-1]


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

    table = ds.StepTable.affine([0.0], 1.0, 0.0, t=0.5, m=m, sd=s)
    return ds.run_steps(np.asarray(x, dtype=dtype), table, score=score).x


def exp2_table():
    """2^(j/128), j = 0..127, each correctly rounded to a double: computed
    here with Decimal, independently of csrc/exp2_table.h."""
    from decimal import Decimal, localcontext

    with localcontext() as ctx:
        ctx.prec = 80
        return np.array([float(Decimal(2) ** (Decimal(j) / 128)) for j in range(128)])


_EXP2_TABLE = exp2_table()


def exp_nonpositive(x):
    """Twin of csrc/fastmath.h's exp for x in [-750, 0] (Tang's table-driven
    method): x = (128 e + j) ln(2)/128 + r, e^r = 1 + q with q of degree 5,
    p = T_j + T_j q, times 2^h then 2^(e-h), h = e/2 rounded (one rounding
    into the subnormals)."""
    shift = 6755399441055744.0
    x = np.asarray(x, dtype=np.float64)
    t = x * (128.0 * 1.44269504088896340736) + shift
    n = t - shift
    r = (x - n * (6.93147180369123816490e-01 / 128)) - n * (1.90821492927058770002e-10 / 128)
    j = n.astype(np.int64) & 127
    q = r + (r * r) * (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120))))
    table_j = _EXP2_TABLE[j]
    p = table_j + table_j * q
    e = (n - j) * (1.0 / 128)
    h = np.round(e * 0.5)
    return (p * np.ldexp(1.0, h.astype(np.int64))) * np.ldexp(1.0, (e - h).astype(np.int64))


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
