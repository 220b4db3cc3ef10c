"""Convergence studies and distances between samples, each with its
statistical noise level, so that a notebook or a test can tell a real
difference from sampling noise.

* :func:`strong_error` and :func:`weak_error` run a process at a ladder of
  step counts on **one** :class:`~diffsde.BrownianPath` against a reference
  at 16x the finest count on the same path, so the errors measure the
  discretization, not the sampling; :func:`fit_order` fits the order.
* :func:`wasserstein_1d`, :func:`ks_statistic`, :func:`sliced_wasserstein`
  return a :class:`Distance` with ``floor``: the same statistic between two
  samples of one law at these sizes (a permutation estimate), below which a
  distance means nothing.
* :func:`moment_errors`: sample moments against known ones, with standard
  errors.
"""
import math
import numbers
from dataclasses import dataclass, field

import numpy as np

# two-sided 95% Student t quantiles for 1..30 degrees of freedom
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


@dataclass(frozen=True)
class OrderFit:
    """A fitted convergence order: error ~ C N^(-order).

    Attributes
    ----------
    order : float
        Minus the least-squares slope of log(error) against log(N).
    ci : (float, float)
        95% confidence interval of the order (Student t on the residuals;
        degenerate with two points).
    constant : float
        C.
    """

    order: float
    ci: tuple
    constant: float

    def __repr__(self):
        return f"OrderFit(order={self.order:.3f}, 95% CI [{self.ci[0]:.3f}, {self.ci[1]:.3f}])"


def fit_order(steps, errors):
    """Fit error = C N^(-p) by least squares in log-log coordinates.

    Parameters
    ----------
    steps : array of step counts N (>= 2 distinct values)
    errors : array of positive errors

    Returns
    -------
    OrderFit
    """
    n = np.asarray(steps, dtype=np.float64)
    e = np.asarray(errors, dtype=np.float64)
    if n.shape != e.shape or n.ndim != 1 or n.size < 2:
        raise ValueError(f"steps and errors must be 1-D of equal length >= 2; got {n.shape}, {e.shape}")
    if np.any(n <= 0) or np.any(~(e > 0)) or np.unique(n).size < 2:
        raise ValueError("steps must be positive (two distinct values at least) and errors positive")
    x, y = np.log(n), np.log(e)
    slope, intercept = np.polyfit(x, y, 1)
    dof = n.size - 2
    if dof > 0:
        resid = y - (slope * x + intercept)
        se = math.sqrt(np.sum(resid**2) / dof / np.sum((x - x.mean()) ** 2))
        half = _T95[min(dof, 30) - 1] * se
    else:
        half = 0.0
    return OrderFit(order=-slope, ci=(-slope - half, -slope + half), constant=math.exp(intercept))


@dataclass(frozen=True)
class ConvergenceStudy:
    """Errors at a ladder of step counts, their standard errors and the fit."""

    kind: str
    steps: np.ndarray
    errors: np.ndarray
    stderr: np.ndarray
    reference_steps: int
    fit: OrderFit = field(repr=False)

    def table(self):
        """The study as a text table."""
        lines = [f"{self.kind} error against {self.reference_steps} steps on the same Brownian path",
                 f"{'N':>8s} {'error':>12s} {'std err':>12s}"]
        lines += [f"{n:8d} {e:12.4e} {s:12.2e}" for n, e, s in zip(self.steps, self.errors, self.stderr)]
        lines.append(f"fitted order {self.fit.order:.3f} (95% CI {self.fit.ci[0]:.3f} .. {self.fit.ci[1]:.3f})")
        return "\n".join(lines)

    def plot(self, ax=None, **kwargs):
        """Log-log error against step count with the fitted line (matplotlib)."""
        from .plot import convergence

        return convergence(self, ax=ax, **kwargs)

    def __repr__(self):
        return f"ConvergenceStudy({self.kind}, N={self.steps.tolist()}, order={self.fit.order:.3f})"


def _ladder(steps):
    steps = np.asarray(steps)
    if steps.ndim != 1 or steps.size < 2 or steps.dtype.kind not in "iu":
        raise ValueError(f"steps must be a 1-D ladder of at least 2 integer step counts; got {steps!r}")
    if np.any(steps < 1) or np.any(steps & (steps - 1)):
        raise ValueError(f"steps must be powers of two (one Brownian path serves them); got {steps.tolist()}")
    return np.sort(steps.astype(np.int64))


def _runner(process, x0, score, direction, method, kwargs):
    from .simulate import forward, reverse

    if direction == "forward":
        if score is not None:
            raise ValueError("a forward run takes no score")
        return lambda n, path: forward(process, x0, int(n), method=method, noise=path, **kwargs).x
    if direction == "reverse":
        if score is None:
            raise ValueError("a reverse run needs a score")
        return lambda n, path: reverse(process, score, x0, int(n), method=method, noise=path, **kwargs).x
    raise ValueError(f"direction must be 'forward' or 'reverse'; got {direction!r}")


def _coupled_runs(process, x0, steps, score, direction, method, reference_steps, rng, kwargs):
    from .brownian import BrownianPath

    steps = _ladder(steps)
    reference = int(reference_steps) if reference_steps is not None else 16 * int(steps[-1])
    if reference & (reference - 1) or reference < 16 * steps[-1]:
        raise ValueError(f"reference_steps must be a power of two >= 16 x the finest ({16 * steps[-1]}); "
                         f"got {reference}")
    x0 = np.asarray(x0)
    path = BrownianPath(x0.shape, int(reference).bit_length() - 1, rng=rng)
    run = _runner(process, x0, score, direction, method, kwargs)
    return steps, reference, run(reference, path), [run(n, path) for n in steps]


def strong_error(process, x0, steps, *, score=None, direction="forward", method=None,
                 reference_steps=None, rng=None, **kwargs):
    r"""Strong (pathwise) error :math:`\sqrt{E|X^N_T - X^{ref}_T|^2}` at each N.

    Every run uses the same :class:`~diffsde.BrownianPath`, so the error is
    the discretization's alone; the reference is the same method at
    ``reference_steps`` (default 16x the finest N). Euler-Maruyama on the
    additive-noise VP, VE and sub-VP SDEs has strong order 1.

    Parameters
    ----------
    process : SDE or chain (with ``direction="forward"``), SDE (reverse)
    x0 : array ``(batch, *event)``
        Start state (at t0 forward, at t_start in reverse).
    steps : ladder of powers of two
    score : the score, for ``direction="reverse"``
    method : str, optional
    reference_steps : int, optional
    rng : SPEC 7 seed for the Brownian path
    **kwargs : passed to ``ds.forward`` / ``ds.reverse`` (t0, t1, t_end, alpha, ...)

    Returns
    -------
    ConvergenceStudy
        errors are RMS over all elements; stderr by the delta method.
    """
    steps, reference, ref, runs = _coupled_runs(process, x0, steps, score, direction, method,
                                                reference_steps, rng, kwargs)
    errors, stderr = [], []
    for x in runs:
        sq = ((np.asarray(x, np.float64) - ref) ** 2).ravel()
        ms = sq.mean()
        errors.append(math.sqrt(ms))
        stderr.append(sq.std(ddof=1) / math.sqrt(sq.size) / (2 * math.sqrt(ms)) if ms > 0 else 0.0)
    errors, stderr = np.array(errors), np.array(stderr)
    return ConvergenceStudy("strong", steps, errors, stderr, reference, fit_order(steps, errors))


def weak_error(process, x0, steps, phi=None, *, score=None, direction="forward", method=None,
               reference_steps=None, rng=None, **kwargs):
    r"""Weak error :math:`|E\,\varphi(X^N_T) - E\,\varphi(X^{ref}_T)|` at each N,
    from coupled differences on one Brownian path.

    Because :math:`\varphi(X^N) - \varphi(X^{ref})` is computed path by path,
    its standard error scales with the step, not with the spread of
    :math:`\varphi`, and a few thousand paths resolve a first-order weak error.

    Parameters
    ----------
    phi : callable, optional
        Maps the final state ``(batch, *event)`` to one value per path, shape
        (batch,). Default: the sum of squares of each row (a second moment).
    Other parameters as for :func:`strong_error`.

    Returns
    -------
    ConvergenceStudy
    """
    if phi is None:
        def phi(x):
            return np.sum(np.asarray(x, np.float64).reshape(x.shape[0], -1) ** 2, axis=1)
    steps, reference, ref, runs = _coupled_runs(process, x0, steps, score, direction, method,
                                                reference_steps, rng, kwargs)
    phi_ref = np.asarray(phi(ref), dtype=np.float64)
    errors, stderr = [], []
    for x in runs:
        diff = np.asarray(phi(x), dtype=np.float64) - phi_ref
        errors.append(abs(diff.mean()))
        stderr.append(diff.std(ddof=1) / math.sqrt(diff.size))
    errors, stderr = np.array(errors), np.array(stderr)
    return ConvergenceStudy("weak", steps, errors, stderr, reference, fit_order(steps, errors))


# ---- distances ----------------------------------------------------------------

@dataclass(frozen=True)
class Distance:
    """A distance between two samples and its two-sample noise floor: the
    same statistic between two samples of one law at these sizes (median
    over random splits of the pooled samples)."""

    value: float
    floor: float
    n: tuple

    def __float__(self):
        return float(self.value)

    def __repr__(self):
        return f"Distance({self.value:.4g}, floor {self.floor:.4g} at n = {self.n})"


def _samples_1d(x, name):
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size < 2 or not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must hold at least 2 finite numbers")
    return x


def _floor(statistic, x, y, rng, repeats=5):
    gen = np.random.default_rng(rng)
    pooled = np.concatenate([x, y])
    values = []
    for _ in range(repeats):
        perm = gen.permutation(pooled.shape[0])
        values.append(statistic(pooled[perm[:x.shape[0]]], pooled[perm[x.shape[0]:]]))
    return float(np.median(values))


def _w1d(x, y, p):
    if x.size == y.size:
        return float(np.mean(np.abs(np.sort(x) - np.sort(y)) ** p) ** (1 / p))
    q = (np.arange(max(x.size, y.size)) + 0.5) / max(x.size, y.size)
    return float(np.mean(np.abs(np.quantile(x, q) - np.quantile(y, q)) ** p) ** (1 / p))


def wasserstein_1d(x, y, p=1, *, rng=0):
    r"""The p-Wasserstein distance (p = 1 or 2) between two 1-D samples,
    :math:`(\int_0^1 |F_x^{-1} - F_y^{-1}|^p)^{1/p}` from sorted samples."""
    if p not in (1, 2):
        raise ValueError(f"p must be 1 or 2; got {p!r}")
    x, y = _samples_1d(x, "x"), _samples_1d(y, "y")
    return Distance(_w1d(x, y, p), _floor(lambda a, b: _w1d(a, b, p), x, y, rng), (x.size, y.size))


def _ks(x, y):
    xs, ys = np.sort(x), np.sort(y)
    grid = np.concatenate([xs, ys])
    fx = np.searchsorted(xs, grid, side="right") / xs.size
    fy = np.searchsorted(ys, grid, side="right") / ys.size
    return float(np.max(np.abs(fx - fy)))


def ks_statistic(x, y, *, rng=0):
    """The two-sample Kolmogorov-Smirnov statistic ``sup |F_x - F_y|``."""
    x, y = _samples_1d(x, "x"), _samples_1d(y, "y")
    return Distance(_ks(x, y), _floor(_ks, x, y, rng), (x.size, y.size))


def sliced_wasserstein(x, y, n_projections=128, *, p=2, rng=0):
    r"""Sliced p-Wasserstein distance between samples in d dimensions:
    :math:`(E_\theta\, W_p^p(\theta^T x, \theta^T y))^{1/p}` over
    ``n_projections`` random unit directions (fixed by ``rng``)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must be (n, d) with equal d; got {x.shape}, {y.shape}")
    if isinstance(n_projections, bool) or not isinstance(n_projections, numbers.Integral) or n_projections < 1:
        raise ValueError(f"n_projections must be an int >= 1; got {n_projections!r}")
    gen = np.random.default_rng(rng)
    dirs = gen.standard_normal((n_projections, x.shape[1]))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)

    def statistic(a, b):
        pa, pb = a @ dirs.T, b @ dirs.T
        return float(np.mean([_w1d(pa[:, i], pb[:, i], p) ** p for i in range(n_projections)]) ** (1 / p))

    return Distance(statistic(x, y), _floor(statistic, x, y, gen), (x.shape[0], y.shape[0]))


def moment_errors(x, mean, var):
    """Sample mean and variance (per coordinate) against known values.

    Returns
    -------
    dict with ``mean_error``, ``mean_stderr``, ``var_error``, ``var_stderr``
    (arrays over coordinates; the variance's standard error from the sample
    fourth moment, so it holds for non-Gaussian laws too).
    """
    x = np.asarray(x, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x.reshape(x.shape[0], -1)
    n = x.shape[0]
    if n < 2:
        raise ValueError("x must hold at least 2 samples")
    centred = x - x.mean(axis=0)
    m2 = np.mean(centred**2, axis=0)
    m4 = np.mean(centred**4, axis=0)
    return {
        "mean_error": x.mean(axis=0) - np.asarray(mean, dtype=np.float64),
        "mean_stderr": np.sqrt(m2 / n),
        "var_error": x.var(axis=0, ddof=1) - np.asarray(var, dtype=np.float64),
        "var_stderr": np.sqrt(np.maximum(m4 - m2**2, 0.0) / n),
    }
