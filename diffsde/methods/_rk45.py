r"""Adaptive Dormand-Prince 5(4) on the probability-flow ODE.

The pair of Dormand & Prince (1980) with the first-same-as-last property
(FSAL: the seventh stage is the first of the next step, so an accepted step
costs six evaluations), the standard step-size controller

.. math::

    \mathrm{err} = \sqrt{\frac{1}{n}\sum_j \Big(\frac{e_j}{\mathrm{atol}
        + \mathrm{rtol}\max(|y_j|, |y'_j|)}\Big)^2}, \qquad
    h \leftarrow h \cdot \min\big(10, \max(0.2, 0.9\, \mathrm{err}^{-1/5})\big)

(Hairer, Norsett & Wanner 1993, II.4; a step after a rejection may not
grow), the automatic first step of the same section, and the order-4
continuous extension for output at any time (Hairer et al. 1993, II.6). :func:`solve` is the controller, shared by every
right-hand side; ``reverse(..., method="rk45")`` gives it stages that run
as register programs of the C engine (:class:`ProgramStages`), and
``log_likelihood(..., method="rk45")`` stages in NumPy on the augmented
state (:class:`NumpyStages`).

The error norm is taken over the whole batch (all rows and coordinates,
as score_sde flattens the batch into one ODE), so the steps of a row
depend on the other rows: a run is exempt from the prefix and chunking
invariance of fixed-grid methods, and refuses dask arrays. It is the same
bits for any thread count: the stages run in the engine, which is
thread-count invariant, and the norm is one NumPy sum over a contiguous
array, in a fixed order.
"""
import math
from fractions import Fraction as F

import numpy as np

from .._engine import execute, prepare
from .._steptable import StepTable, combine_rows, normal_rows, score_rows
from .._validation import real_scalar
from ._registry import Method, Option

# ---- the tableau, as data -------------------------------------------------------

#: Nodes c_i, the Runge-Kutta matrix a_ij and the weights of the 5th-order
#: solution b_i and of the embedded 4th-order one b*_i (Dormand & Prince
#: 1980, Table 2); exact fractions, rounded to float64 once.
C_NODES = (F(0), F(1, 5), F(3, 10), F(4, 5), F(8, 9), F(1), F(1))
A_MATRIX = (
    (),
    (F(1, 5),),
    (F(3, 40), F(9, 40)),
    (F(44, 45), F(-56, 15), F(32, 9)),
    (F(19372, 6561), F(-25360, 2187), F(64448, 6561), F(-212, 729)),
    (F(9017, 3168), F(-355, 33), F(46732, 5247), F(49, 176), F(-5103, 18656)),
    (F(35, 384), F(0), F(500, 1113), F(125, 192), F(-2187, 6784), F(11, 84)),
)
B_WEIGHTS = (F(35, 384), F(0), F(500, 1113), F(125, 192), F(-2187, 6784), F(11, 84), F(0))
B_EMBEDDED = (F(5179, 57600), F(0), F(7571, 16695), F(393, 640), F(-92097, 339200), F(187, 2100), F(1, 40))
#: The order of the solution that is propagated, and of the error estimate.
ORDER, ERROR_ORDER = 5, 4
#: Dense-output coefficients d_i of the continuous extension (Hairer et al.
#: 1993, II.6, the DOPRI5 code's contd5).
D_DENSE = (F(-12715105075, 11282082432), F(0), F(87487479700, 32700410799), F(-10690763975, 1880347072),
           F(701980252875, 199316789632), F(-1453857185, 822651844), F(69997945, 29380423))

C = np.array([float(v) for v in C_NODES])
A = [np.array([float(v) for v in row]) for row in A_MATRIX]
B = np.array([float(v) for v in B_WEIGHTS])
E = np.array([float(b - bh) for b, bh in zip(B_WEIGHTS, B_EMBEDDED)])
STAGES = 7

#: The controller's constants (Hairer et al. 1993, II.4).
SAFETY, MIN_FACTOR, MAX_FACTOR = 0.9, 0.2, 10.0
#: Default tolerances (score_sde's); reverse's default t_end is the process's default_t_end.
DEFAULT_RTOL = DEFAULT_ATOL = 1e-5


def dense_weights(theta):
    r"""Weights w_i(theta) with y(t + theta h) = y + h sum_i w_i k_i, the
    continuous extension

    .. math::

        y(t + \theta h) = y + \theta\Big(\Delta + (1-\theta)\big(h k_1 - \Delta
            + \theta\,(2\Delta - h k_1 - h k_7 + (1-\theta)\, h \textstyle\sum_i d_i k_i)\big)\Big),
        \quad \Delta = h \textstyle\sum_i b_i k_i

    (Hairer et al. 1993, II.6), expanded in the k_i. Shape ``(len(theta), 7)``.
    """
    th = np.atleast_1d(np.asarray(theta, dtype=np.float64))[:, None]
    b = B[None, :]
    d = np.array([float(v) for v in D_DENSE])[None, :]
    e1 = np.zeros((1, STAGES))
    e1[0, 0] = 1.0
    e7 = np.zeros((1, STAGES))
    e7[0, 6] = 1.0
    return th * (b + (1 - th) * ((e1 - b) + th * ((2 * b - e1 - e7) + (1 - th) * d)))


# ---- the controller --------------------------------------------------------------

def rms_norm(values):
    """sqrt(mean(values^2)) over all elements, in float64; one NumPy sum
    over a contiguous array, so the same bits on every run."""
    v = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        return 0.0
    return math.sqrt(float(np.dot(v, v)) / v.size)


class StepSizeUnderflow(FloatingPointError):
    """The controller needs a step below the spacing of floats at t."""


def _scale(y, y_new, rtol, atol):
    y = np.abs(np.asarray(y, dtype=np.float64))
    if y_new is not None:
        y = np.maximum(y, np.abs(np.asarray(y_new, dtype=np.float64)))
    return atol + rtol * y


def initial_step(stages, y, f0, t0, direction, rtol, atol, span):
    """The first step of Hairer et al. (1993), II.4: h0 from the sizes of y
    and f, one trial Euler step to estimate f', then h1 = (0.01 /
    max(|f|, h0 |f'|))^(1/(p+1)); returns min(100 h0, h1, span)."""
    scale = _scale(y, None, rtol, atol)
    d0 = rms_norm(np.asarray(y, dtype=np.float64) / scale)
    d1 = rms_norm(np.asarray(f0, dtype=np.float64) / scale)
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    h0 = min(h0, span)
    f1 = stages.probe(y, f0, t0, direction * h0)
    d2 = rms_norm((np.asarray(f1, dtype=np.float64) - np.asarray(f0, dtype=np.float64)) / scale) / h0
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1.0 / (ERROR_ORDER + 1))
    return min(100 * h0, h1, span)


class Solution:
    """What :func:`solve` returns: the final state, the states at the
    requested times, and the work done."""

    def __init__(self, y, ys, nfe, accepted, rejected, step_sizes):
        self.y, self.ys, self.nfe = y, ys, nfe
        self.accepted, self.rejected, self.step_sizes = accepted, rejected, step_sizes


def solve(stages, y0, t0, t1, rtol, atol, save_at=()):
    """Integrate dy/dt = v(y, t) from t0 to t1 (either direction) with
    Dormand-Prince 5(4), the controller above and FSAL.

    ``stages`` provides ``velocity(y, t)``, ``probe(y, f, t, h)`` (v at
    y + h f, t + h) and ``attempt(y, f, t, h, want_k)`` returning
    ``(y_new, f_new, err, ks)`` with err = h sum_i e_i k_i and ks the seven
    stages when ``want_k`` (for dense output). ``save_at`` are times in
    the span, returned in the order given.
    """
    direction = 1.0 if t1 > t0 else -1.0
    span = abs(t1 - t0)
    save_at = np.asarray(save_at, dtype=np.float64).reshape(-1)
    ys = [None] * save_at.size
    pending = sorted(range(save_at.size), key=lambda i: direction * save_at[i])
    for i in [i for i in pending if save_at[i] == t0]:
        ys[i] = np.array(y0, copy=True)
    pending = [i for i in pending if save_at[i] != t0]
    y, t = y0, t0
    f = stages.velocity(y, t)
    nfe = 1
    h_abs = initial_step(stages, y, f, t, direction, rtol, atol, span)
    nfe += 1
    accepted = rejected = 0
    sizes = []
    exponent = -1.0 / (ERROR_ORDER + 1)
    while direction * (t1 - t) > 0:
        min_step = 10 * abs(np.nextafter(t, direction * np.inf) - t)
        h_abs = max(h_abs, 0.0)
        just_rejected = False
        while True:
            if h_abs < min_step:
                raise StepSizeUnderflow(
                    f"rk45: the step size underflowed at t = {t:.17g}: the controller asked for "
                    f"|h| = {h_abs:.3g}, below 10 float spacings of t ({min_step:.3g}), after {accepted} "
                    f"accepted and {rejected} rejected steps (rtol = {rtol:g}, atol = {atol:g}); the "
                    f"ODE is too stiff or singular there: stop further from it (t_end) or loosen the "
                    f"tolerances")
            h = direction * h_abs
            t_new = t + h
            if direction * (t_new - t1) > 0:
                t_new = t1
            h = t_new - t
            h_abs = abs(h)
            inside = [i for i in pending if direction * (save_at[i] - t_new) <= 0]
            y_new, f_new, err, ks = stages.attempt(y, f, t, h, bool(inside))
            nfe += STAGES - 1
            norm = rms_norm(np.asarray(err, dtype=np.float64) / _scale(y, y_new, rtol, atol))
            if not math.isfinite(norm):
                # a non-finite stage (nonfinite="warn"/"ignore") fails the
                # step; NaN would compare false both ways
                norm = math.inf
            if norm < 1:
                factor = MAX_FACTOR if norm == 0 else min(MAX_FACTOR, SAFETY * norm ** exponent)
                if just_rejected:
                    factor = min(1.0, factor)
                h_abs *= factor
                break
            h_abs *= max(MIN_FACTOR, SAFETY * norm ** exponent)
            just_rejected = True
            rejected += 1
        for i in inside:
            theta = (save_at[i] - t) / h
            w = dense_weights(theta)[0]
            value = np.asarray(y, dtype=np.float64).copy()
            for k in range(STAGES):
                if w[k] != 0:
                    value += (h * w[k]) * np.asarray(ks[k], dtype=np.float64)
            if save_at[i] == t_new:
                value = np.array(y_new, dtype=np.float64, copy=True)
            ys[i] = value.astype(np.asarray(y).dtype, copy=False)
        pending = pending[len(inside):]
        accepted += 1
        sizes.append(h)
        y, f, t = y_new, f_new, t_new
    return Solution(y, ys, nfe, accepted, rejected, np.asarray(sizes))


# ---- stages as register programs of the C engine -------------------------------

#: Registers of one attempted step: the state y, the stages k_1..k_7, a
#: stage state Y and the error estimate.
_X, _K, _Y, _ERR = 0, 1, 8, 9


class ProgramStages:
    """Stages of the probability-flow ODE dx/dt = f(t) x - g(t)^2 s(x, t)/2
    as register programs run by the C engine.

    One score row computes k = f(t) Y - g(t)^2/2 s(Y, t) (weights w0 = f,
    w1 = -g^2/2); an attempted step is the program

    ``normal k1 <- input; for i = 2..7: combine Y <- y + h sum_j a_ij k_j;
    score k_i <- v(Y, t + c_i h); combine E <- h sum_i e_i k_i``

    with y_new = Y after stage 7 (a_7j = b_j). k1 (first same as last: the
    previous step's k7) enters as the run's ``noise`` array, read by a
    normal row of stream 0; E, k7 (and k1..k6 when a dense output falls in
    the step) come back as snapshots of register 0, which the last rows
    overwrite with them in turn before leaving y_new there.
    """

    def __init__(self, sde, score, dtype, run):
        self.sde, self.score, self.dtype, self.run = sde, score, dtype, run

    def _coefficients(self, t):
        t = np.asarray(t, dtype=np.float64)
        f = np.asarray(self.sde.drift_coefficient(t), dtype=np.float64)
        g2 = np.asarray(self.sde.diffusion(t), dtype=np.float64) ** 2
        m, sd = self.sde.marginal_coefficients(t)
        return f, -0.5 * g2, np.asarray(m, dtype=np.float64), np.asarray(sd, dtype=np.float64)

    def _score_row(self, dst, src, t, step):
        f, w1, m, sd = self._coefficients(t)
        return score_rows(dst, src, float(f), float(w1), t=float(t), m=float(m), sd=float(sd), step=step)

    def velocity(self, y, t):
        table = StepTable.program(self._score_row(_X, _X, t, 0))
        return self.run(y, table, None, None, f"the first evaluation at t = {t:.6g}")[0]

    def probe(self, y, f, t, h):
        rows = [normal_rows(_K, interval=0, step=0), combine_rows(_X, [(1.0, _X), (h, _K)], step=0),
                self._score_row(_X, _X, t + h, 0)]
        return self.run(y, StepTable.program(*rows), f, None, f"the first-step probe at t = {t + h:.6g}")[0]

    def attempt(self, y, f, t, h, want_k):
        rows = [normal_rows(_K, interval=0, step=0)]
        for i in range(1, STAGES):
            terms = [(1.0, _X)] + [(h * a, _K + j) for j, a in enumerate(A[i]) if a != 0]
            rows.append(combine_rows(_Y, terms, step=0))
            rows.append(self._score_row(_K + i, _Y, t + C[i] * h, 0))
        rows.append(combine_rows(_ERR, [(h * e, _K + j) for j, e in enumerate(E) if e != 0], step=0))
        outputs = [_ERR, _K + 6] + ([_K + j for j in range(STAGES - 1)] if want_k else [])
        for n, reg in enumerate(outputs, start=1):
            rows.append(combine_rows(_X, [(1.0, reg)], step=n))
        rows.append(combine_rows(_X, [(1.0, _Y)], step=len(outputs) + 1))
        # save = n keeps the state after n steps, i.e. after output step n - 1
        y_new, snaps = self.run(y, StepTable.program(*rows), f, list(range(2, len(outputs) + 2)),
                                f"the step from t = {t:.6g} to {t + h:.6g}")
        ks = [snaps[2 + j] for j in range(STAGES - 1)] + [snaps[1]] if want_k else None
        return y_new, snaps[1], snaps[0], ks


def check_tolerances(rtol, atol, dtype=np.float64):
    """rtol and atol as floats: rtol >= 10 eps of the dtype (below it the
    error estimate is rounding; 10 eps keeps the default 1e-5 valid in
    float32), atol > 0."""
    rtol = real_scalar(rtol, "rtol", "positive")
    atol = real_scalar(atol, "atol", "positive")
    floor = 10 * float(np.finfo(dtype).eps)
    if rtol < floor:
        raise ValueError(f"rtol must be >= 10 eps of {np.dtype(dtype).name} = {floor:.3g} (below it the error "
                         f"estimate is rounding); got {rtol!r}")
    return rtol, atol


def _not_a_fixed_table(view, rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL):
    raise ValueError("method 'rk45' is adaptive: its steps are chosen while it runs, so it has no fixed step "
                     "table; run it with ds.reverse(process, score, x, method='rk45', rtol=..., atol=...)")


def _positive(name):
    return lambda v: real_scalar(v, name, "positive")


def engine_runner(score, dtype, nonfinite, counter):
    """run(y, table, k1, save) -> (final state, snapshots): one register
    program on the C engine; k1 enters as the noise array of stream 0."""

    def run(y, table, k1, save, where):
        noise = None if k1 is None else np.asarray(k1)[None]
        plan = prepare(y, table, score=score, noise=noise, save=save, dtype=dtype, nonfinite=nonfinite)
        try:
            result = execute(plan, 0)
        except FloatingPointError as exc:
            # the engine counts the rows of one attempted step's program
            exc.add_note(f"diffsde: in rk45's register program for {where} (its rows are the stages)")
            raise
        counter[0] += result.nfe
        return result.x, result.xs

    return run


def reverse_rk45(sde, score, x, t_start, t_end, rtol, atol, save_at, dtype, nonfinite):
    """The adaptive reverse run behind ``reverse(..., method="rk45")`` on a
    validated start ``x``; returns (x, xs, ts, Solution)."""
    counter = [0]
    stages = ProgramStages(sde, score, dtype, engine_runner(score, dtype, nonfinite, counter))
    if save_at is None:
        times = np.array([t_start, t_end])
    else:
        times = np.atleast_1d(np.asarray(save_at))
        if times.dtype.kind not in "iuf" or times.dtype.kind in "iu":
            raise TypeError(f"save_at of method='rk45' must be times (floats) in [t_end, t_start]; got dtype "
                            f"{times.dtype} (an adaptive run has no grid indices)")
        times = times.astype(np.float64).reshape(-1)
        bad = ~np.isfinite(times) | (times < t_end) | (times > t_start)
        if np.any(bad):
            raise ValueError(f"save_at times of method='rk45' must lie in [t_end, t_start] = [{t_end:g}, "
                             f"{t_start:g}]; got {float(times[bad][0])!r}")
        times = np.unique(times)[::-1]
    sol = solve(stages, x, t_start, t_end, rtol, atol, save_at=times)
    if sol.nfe != counter[0]:
        raise AssertionError(f"rk45 counted {sol.nfe} evaluations, the engine ran {counter[0]}")
    xs = np.stack(sol.ys) if len(sol.ys) else np.empty((0,) + np.shape(x), dtype=dtype)
    return sol.y, xs.astype(dtype, copy=False), times, sol


REVERSE = Method(
    "rk45", "reverse", _not_a_fixed_table, requires=("affine",), kind="ode", deterministic=True, nfe_per_step=6,
    summary="adaptive Dormand-Prince 5(4) on the probability-flow ODE (FSAL, error control to rtol/atol, "
            "dense output); needs t_end > 0 (default: the process's default_t_end)",
    paper="Dormand & Prince 1980; Hairer, Norsett & Wanner 1993; Song et al. 2021", order=5.0, streams=(),
    adaptive=True,
    options=(Option("rtol", DEFAULT_RTOL, _positive("rtol"), "relative tolerance of the step-size control"),
             Option("atol", DEFAULT_ATOL, _positive("atol"), "absolute tolerance of the step-size control")))


class NumpyStages:
    """Stages of dy/dt = fun(y, t) computed in NumPy (float64 vectors): the
    augmented likelihood ODE, whose divergence the C engine cannot take."""

    def __init__(self, fun):
        self.fun = fun

    def velocity(self, y, t):
        return self.fun(y, t)

    def probe(self, y, f, t, h):
        return self.fun(y + h * f, t + h)

    def attempt(self, y, f, t, h, want_k):
        ks = [f]
        for i in range(1, STAGES):
            stage = y.copy()
            for j, a in enumerate(A[i]):
                if a != 0:
                    stage += (h * a) * ks[j]
            ks.append(self.fun(stage, t + C[i] * h))
        err = np.zeros_like(y)
        for j, e in enumerate(E):
            if e != 0:
                err += (h * e) * ks[j]
        return stage, ks[6], err, ks
