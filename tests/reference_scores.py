"""NumPy twins of the built-in mixture and empirical scores (csrc/scores.c,
csrc/mixture_kernel.h, csrc/empirical_kernel.h), bit for bit.

Each twin repeats the kernel's double arithmetic operation by operation and
in the kernel's order: vectorized over rows (every row is computed on its
own in C, so a row's bits do not depend on the block, the tile or the SIMD
lane it lands in) and looping over components, coordinates and points in
the order of the C loops, so every sum is accumulated left to right as in C.
The C core is compiled with -ffp-contract=off (no fused multiply-add), so a
NumPy float64 add, mul or div is the same IEEE operation as the C one.

The transcendental functions are the kernel's own:

* the isotropic/diagonal mixture weights go through the table exp of
  csrc/fastmath.h (``reference.exp_nonpositive``) after the kernel's clamp
  at -750;
* so do the full-covariance weights up to d = FULL_TILE_MAX_DIM (the tile
  kernel on the precision matrices);
* so do the empirical weights (and the rescaling of their running sums);
* the log-determinant terms (every mixture) and the weights of larger full
  covariances (the row kernel) call the C library's ``log`` and ``exp``; the
  twins call them through Python's ``math.log`` and ``math.exp``, which are
  those same libm functions (not NumPy's ufuncs, whose SIMD loops may round
  differently). The C kernels take shortcuts that keep these bits (one log
  per run of equal variances, an isotropic log-normalizer summed binade by
  binade, zero weights skipped); the twins take none of them.

float32 states are widened to double, scored in double and rounded once.
"""
import math

import numpy as np

from reference import exp_nonpositive

LOG_2PI = 1.8378770664093454835606594728112  # the literal of csrc/scores.c
EXP_FLOOR = -750.0  # DSDE_EXP_FLOOR of csrc/mixture_kernel.h
FULL_TILE_MAX_DIM = 32  # of csrc/scores.c: larger full covariances use the row kernel

_libm_exp = np.frompyfunc(math.exp, 1, 1)


def libm_exp(v):
    """The C library's exp, elementwise (math.exp calls it)."""
    return np.asarray(_libm_exp(np.asarray(v, np.float64)), dtype=np.float64)


def _rows(x, d):
    x = np.asarray(x)
    rows = x.reshape(-1, d).astype(np.float64)
    return rows, x.dtype, x.shape


def mixture_prepare(gm, m, s):
    """inv_c = 1 / (m^2 lambda + s^2), m mu and the log-normalizers
    log w_k - sum_j 1/2 (log 2 pi + log c_kj), as mixture_prepare does."""
    lambdas = np.asarray(gm.lambdas, np.float64)
    K, d = lambdas.shape
    c = m * m * lambdas + s * s
    inv_c = 1.0 / c
    mmu = m * np.asarray(gm.means, np.float64)
    lognorm = np.empty(K)
    log_weights = gm._log_weights()  # the array handed to C
    for k in range(K):
        half_logdet = 0.0
        for j in range(d):
            half_logdet += 0.5 * (LOG_2PI + math.log(c[k, j]))
        lognorm[k] = log_weights[k] - half_logdet
    return inv_c, mmu, lognorm


def _mixture_diagonal(gm, rows, m, s, exp):
    """The tile kernel (isotropic and diagonal covariances)."""
    inv_c, mmu, lognorm = mixture_prepare(gm, m, s)
    K, d = inv_c.shape
    n = rows.shape[0]
    logit = np.empty((K, n))
    best = np.full(n, -np.inf)
    for k in range(K):
        lk = np.zeros(n)
        for j in range(d):
            diff = mmu[k, j] - rows[:, j]
            lk = lk + diff * (diff * inv_c[k, j])
        lk = lognorm[k] - 0.5 * lk
        best = np.where(lk > best, lk, best)
        logit[k] = lk
    total = np.zeros(n)
    g = np.zeros((n, d))
    for k in range(K):
        v = logit[k] - best
        v = np.where(v < EXP_FLOOR, EXP_FLOOR, v)
        weight = exp(v)
        total = total + weight
        for j in range(d):
            g[:, j] = g[:, j] + weight * ((mmu[k, j] - rows[:, j]) * inv_c[k, j])
    return g / total[:, None]


def precisions(gm, inv_c):
    """P_k = U_k diag(1/c_k) U_k^T as mixture_precisions forms it: entry (i, j)
    summed over the eigenvalue index l in order, each term (U_il / c_l) U_jl."""
    U = np.asarray(gm.vectors, np.float64)
    K, d = inv_c.shape
    P = np.empty((K, d, d))
    for k in range(K):
        a = U[k] * inv_c[k][None, :]  # (U_il / c_l), exact per element
        acc = a[:, None, 0] * U[k][None, :, 0]
        for l in range(1, d):
            acc = acc + a[:, None, l] * U[k][None, :, l]
        P[k] = acc
    return P


def _mixture_full_tile(gm, rows, m, s, exp):
    """The full-covariance tile kernel (d <= FULL_TILE_MAX_DIM): diff = m mu_k
    - x, v = P_k diff (sums over j in order, starting from the j = 0 term),
    quad = sum_i diff_i v_i from 0, then the diagonal kernel's clamped table
    exp and weighted sum of the v_k."""
    inv_c, mmu, lognorm = mixture_prepare(gm, m, s)
    P = precisions(gm, inv_c)
    K, d = inv_c.shape
    n = rows.shape[0]
    logit = np.empty((K, n))
    v = np.empty((K, n, d))
    best = np.full(n, -np.inf)
    for k in range(K):
        diff = mmu[k][None, :] - rows
        for i in range(d):
            vi = P[k, i, 0] * diff[:, 0]
            for j in range(1, d):
                vi = vi + P[k, i, j] * diff[:, j]
            v[k, :, i] = vi
        quad = np.zeros(n)
        for i in range(d):
            quad = quad + diff[:, i] * v[k, :, i]
        lk = lognorm[k] - 0.5 * quad
        best = np.where(lk > best, lk, best)
        logit[k] = lk
    total = np.zeros(n)
    g = np.zeros((n, d))
    for k in range(K):
        e = logit[k] - best
        weight = exp(np.where(e < EXP_FLOOR, EXP_FLOOR, e))
        total = total + weight
        for j in range(d):
            g[:, j] = g[:, j] + weight * v[k, :, j]
    return g / total[:, None]


def _mixture_full(gm, rows, m, s, exp):
    """The row kernel for full covariances: y = U^T (m mu - x) / c, quad =
    sum_i y_i (U^T (m mu - x))_i, per = U y, libm exp of logit - best."""
    inv_c, mmu, lognorm = mixture_prepare(gm, m, s)
    U = np.asarray(gm.vectors, np.float64)
    K, d = inv_c.shape
    n = rows.shape[0]
    logit = np.empty((K, n))
    per = np.empty((K, n, d))
    for k in range(K):
        quad = np.zeros(n)
        y = np.empty((n, d))
        for i in range(d):
            yi = np.zeros(n)
            for j in range(d):
                yi = yi + U[k, j, i] * (mmu[k, j] - rows[:, j])
            y[:, i] = yi * inv_c[k, i]
            quad = quad + yi * y[:, i]
        for j in range(d):
            pj = np.zeros(n)
            for i in range(d):
                pj = pj + U[k, j, i] * y[:, i]
            per[k, :, j] = pj
        logit[k] = lognorm[k] - 0.5 * quad
    best = np.full(n, -np.inf)
    for k in range(K):
        best = np.where(logit[k] > best, logit[k], best)
    total = np.zeros(n)
    g = np.zeros((n, d))
    for k in range(K):
        weight = exp(logit[k] - best)
        total = total + weight
        for j in range(d):
            g[:, j] = g[:, j] + weight * per[k, :, j]
    return g / total[:, None]


def mixture_score(gm, x, m, s, *, exp=None):
    """Twin of the C score of ``gm`` (a GaussianMixture) at the states x
    (any shape ending in d, or a batch of scalars for d = 1; float64 or
    float32) for the marginal m x_0 + s z.

    ``exp`` replaces the kernel's exp (the table exp for isotropic/diagonal
    covariances and full ones up to FULL_TILE_MAX_DIM, libm's for larger full
    ones): the tests swap them to show that the outputs depend on which exp
    runs."""
    rows, dtype, shape = _rows(x, gm.d)
    if gm.vectors is None:
        g = _mixture_diagonal(gm, rows, float(m), float(s), exp or exp_nonpositive)
    elif gm.d <= FULL_TILE_MAX_DIM:
        g = _mixture_full_tile(gm, rows, float(m), float(s), exp or exp_nonpositive)
    else:
        g = _mixture_full(gm, rows, float(m), float(s), exp or libm_exp)
    return g.astype(dtype).reshape(shape)


EMP_POINTS = 256  # DSDE_EMP_POINTS of csrc/simd.h: points per pass
EMP_LANES = 8  # partial sums of the weights per row


def empirical_score(data, x, m, s, *, exp=None):
    """Twin of the C empirical score (``data`` an EmpiricalData) on the
    packed arrays ``data.c_params`` hands to C (points centred, their
    squared norms, the centre): per row x' = x - m centre, |x'|^2 and the
    dot products x'.y'_p summed over j in order, the logits
    ((|x'|^2 - 2m x'.y'_p) + m^2 |y'_p|^2) (-1/(2 s^2)); per block of 256
    points a running maximum (sums rescaled by the table exp of the
    change, plus 0.0 so that no sum is -0), clamped table-exp weights, eight partial totals (point p in
    p mod 8) and the weighted sum of the y'_p in point order; at the end
    ((m acc) / total - x') / s^2 with the total's fixed tree."""
    exp = exp or exp_nonpositive
    m, s = float(m), float(s)
    rows, dtype, shape = _rows(x, data.d)
    _, (flat, _blocks, sq, center) = data.c_params(data.d)
    n, d = data.n, data.d
    Y = flat.reshape(n, d)
    s2 = s * s
    two_m, m2, neg_inv_two_s2 = 2.0 * m, m * m, -0.5 / s2
    nr = rows.shape[0]
    xc = np.empty((nr, d))
    xx = np.zeros(nr)
    for j in range(d):
        xc[:, j] = rows[:, j] - m * center[j]
        xx = xx + xc[:, j] * xc[:, j]
    best = np.full(nr, -np.inf)
    tot = np.zeros((nr, EMP_LANES))
    acc = np.zeros((nr, d))
    for p0 in range(0, n, EMP_POINTS):
        p1 = min(p0 + EMP_POINTS, n)
        dot = xc[:, 0:1] * Y[None, p0:p1, 0]
        for j in range(1, d):
            dot = dot + xc[:, j:j + 1] * Y[None, p0:p1, j]
        logit = ((xx[:, None] - two_m * dot) + m2 * sq[None, p0:p1]) * neg_inv_two_s2
        top = logit.max(axis=1)
        up = top > best
        e = np.where(up, best - top, 0.0)  # the rows that rescale; the others keep their sums
        shrink = exp(np.where(e < EXP_FLOOR, EXP_FLOOR, e))
        tot = np.where(up[:, None], tot * shrink[:, None], tot)
        acc = np.where(up[:, None], acc * shrink[:, None] + 0.0, acc)
        best = np.where(up, top, best)
        e = logit - best[:, None]
        w = exp(np.where(e < EXP_FLOOR, EXP_FLOOR, e))
        for p in range(p0, p1):
            wp = w[:, p - p0]
            tot[:, p % EMP_LANES] = tot[:, p % EMP_LANES] + wp
            acc = acc + wp[:, None] * Y[None, p]
    t = tot
    total = ((t[:, 0] + t[:, 1]) + (t[:, 2] + t[:, 3])) + ((t[:, 4] + t[:, 5]) + (t[:, 6] + t[:, 7]))
    g = ((m * acc) / total[:, None] - xc) / s2
    return g.astype(dtype).reshape(shape)
