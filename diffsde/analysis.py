"""Convergence studies and distances between samples, each with its
statistical noise level, so that a notebook or a test can tell a real
difference from sampling noise.

* :func:`strong_error` and :func:`weak_error` run a process at a ladder of
  step counts on **one** :class:`~diffsde.BrownianPath` against a reference
  at 16x the finest count on the same path, so the errors measure the
  discretization, not the sampling; :func:`fit_order` fits the order with
  its 95% interval, and warns (:class:`OrderFitWarning`) when there is none
  (two points) or it is wide (half-width > :data:`WIDE_CI_HALF_WIDTH`).
* :func:`wasserstein_1d` (exact empirical W_p for any sizes, p >= 1),
  :func:`ks_statistic`, :func:`sliced_wasserstein` return a
  :class:`Distance`: the value, and the same statistic between two samples
  of one law at these sizes (random splits of the pooled samples) as a
  median ``floor``, a 90% band ``[floor_low, floor_high]`` and a
  permutation p-value, so that ``d.verdict()`` says "consistent" or
  "distinguishable" at a stated level. :meth:`Distance.from_null` builds the
  same from distances to fresh samples of a known law.
* :func:`moment_errors`: sample moments against known ones, with standard
  errors.
* :func:`exact_output_law`: for Gaussian data, a sampler's exact output law
  (a moment recursion through its step table) with its KL divergence and
  W2 distance to the target: errors with no Monte Carlo noise at all.
"""
import functools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import grids
from . import methods as registry
from ._exact_law import ExactLaw, exact_output_law
from ._frameworks import array_in
from ._validation import choice, integer, real_scalar, shown
from .brownian import BrownianPath
from .plot import convergence
from .scores import LinearScore
from .simulate import forward, reverse

# the exact law is documented and shown as diffsde.analysis.*
ExactLaw.__module__ = exact_output_law.__module__ = __name__

# two-sided 95% Student t quantiles for 1..30 degrees of freedom
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


#: A fitted order whose 95% confidence interval is wider than this on either
#: side (half-width > 0.25) is "wide": it cannot tell apart orders half a unit
#: apart (strong order 0.5 from 1, or 1 from 1.5), the question a convergence
#: study is there to answer. :func:`fit_order` warns about it.
WIDE_CI_HALF_WIDTH = 0.25


class OrderFitWarning(UserWarning):
    """An order fit without a confidence interval (two points) or with a wide
    one (half-width above :data:`WIDE_CI_HALF_WIDTH`)."""


@dataclass(frozen=True)
class OrderFit:
    """A fitted convergence order: error ~ C N^(-order).

    Attributes
    ----------
    order : float
        Minus the least-squares slope of log(error) against log(N).
    ci : (float, float) or None
        95% confidence interval of the order (Student t on the residuals,
        ``n_points - 2`` degrees of freedom). None with two points: a line
        through two points has no residual, so no interval.
    constant : float
        C.
    n_points : int or None
        Number of (N, error) points fitted.
    """

    order: float
    ci: tuple
    constant: float
    n_points: int = None

    @property
    def wide(self):
        """True if the interval's half-width exceeds :data:`WIDE_CI_HALF_WIDTH`
        (None if there is no interval)."""
        if self.ci is None:
            return None
        return (self.ci[1] - self.ci[0]) / 2 > WIDE_CI_HALF_WIDTH

    def ci_text(self):
        """The interval as text: ``"[0.981, 1.007]"``, with ``" (wide)"``
        when it is wide, or ``"none (2 points)"``."""
        if self.ci is None:
            return "none (2 points)"
        return f"[{self.ci[0]:.3f}, {self.ci[1]:.3f}]" + (" (wide)" if self.wide else "")

    def __repr__(self):
        return f"OrderFit(order={self.order:.3f}, 95% CI {self.ci_text()})"


def fit_order(steps, errors):
    r"""Fit error = C N^(-p) by least squares in log-log coordinates.

    The 95% confidence interval of p is p +- t_{0.975, k-2} se(slope) from
    the residuals of the k points (the textbook interval for a regression
    slope; beyond 30 degrees of freedom the 30-degree quantile 2.042, a
    slightly conservative choice); it assumes the errors follow one power
    law up to independent noise, so a curved log-log plot (a pre-asymptotic
    regime) also widens it.

    Parameters
    ----------
    steps : array of step counts N (>= 2 distinct values)
    errors : array of positive errors

    Returns
    -------
    OrderFit
        With ``ci=None`` for two points.

    Warns
    -----
    OrderFitWarning
        With two points (no degrees of freedom: no interval), or when the
        interval is wide (half-width > :data:`WIDE_CI_HALF_WIDTH` = 0.25).
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
    if dof == 0:
        fit = OrderFit(order=float(-slope), ci=None, constant=math.exp(intercept), n_points=int(n.size))
        warnings.warn(f"order {fit.order:.3f} fitted to 2 points: no degrees of freedom, so no confidence "
                      "interval (ci=None); fit 3 or more step counts", OrderFitWarning, stacklevel=2)
        return fit
    resid = y - (slope * x + intercept)
    se = math.sqrt(np.sum(resid**2) / dof / np.sum((x - x.mean()) ** 2))
    half = _T95[min(dof, 30) - 1] * se
    fit = OrderFit(order=float(-slope), ci=(float(-slope - half), float(-slope + half)),
                   constant=math.exp(intercept), n_points=int(n.size))
    if fit.wide:
        warnings.warn(f"order {fit.order:.3f} has a wide 95% CI [{fit.ci[0]:.3f}, {fit.ci[1]:.3f}] "
                      f"(half-width {half:.2f} > {WIDE_CI_HALF_WIDTH}): the errors do not follow one power law "
                      "over these step counts (too few points, noise, or a pre-asymptotic regime)",
                      OrderFitWarning, stacklevel=2)
    return fit


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
        lines.append(f"fitted order {self.fit.order:.3f} (95% CI {self.fit.ci_text()})")
        return "\n".join(lines)

    def plot(self, ax=None, **kwargs):
        """Log-log error against step count with the fitted line (matplotlib)."""
        return convergence(self, ax=ax, **kwargs)

    def __repr__(self):
        return f"ConvergenceStudy({self.kind}, N={self.steps.tolist()}, order={self.fit.order:.3f})"


def _ladder(steps):
    steps = np.asarray(steps)
    if steps.ndim != 1 or steps.size < 2 or steps.dtype.kind not in "iu":
        raise ValueError(f"steps must be a 1-D ladder of at least 2 integer step counts; got {shown(steps)}")
    if np.any(steps < 1) or np.any(steps & (steps - 1)):
        raise ValueError(f"steps must be powers of two (one Brownian path serves them); got {steps.tolist()}")
    return np.sort(steps.astype(np.int64))


def _runner(process, x0, score, direction, method, kwargs):
    if direction == "forward":
        if score is not None:
            raise ValueError("a forward run takes no score")
        return lambda n, path: forward(process, x0, int(n), method=method, noise=path, **kwargs).x
    if direction == "reverse":
        if score is None:
            raise ValueError("a reverse run needs a score")
        return lambda n, path: reverse(process, score, x0, int(n), method=method, noise=path, **kwargs).x
    choice(direction, "direction", ("forward", "reverse"))


def _coupled_runs(process, x0, steps, score, direction, method, reference_steps, rng, kwargs):
    steps = _ladder(steps)
    finest = 16 * int(steps[-1])
    reference = finest if reference_steps is None else integer(reference_steps, "reference_steps", 1)
    if reference & (reference - 1) or reference < finest:
        raise ValueError(f"reference_steps must be a power of two >= 16 x the finest ({16 * steps[-1]}); "
                         f"got {reference}")
    x0 = np.asarray(array_in(x0, "x0", kwargs.get("dtype"))[0])  # the study runs on NumPy (torch/JAX: a view)
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

    Notes
    -----
    The theorem behind order 1 (additive noise, a drift with bounded first
    and second derivatives) has a constant that grows like
    :math:`e^{\int \lambda\,dt}` with the flow's local expansion rate
    :math:`\lambda`, and the reverse SDE of multimodal data expands
    violently near the boundary between the modes. For the 1-D bimodal data
    of ``datasets.bimodal_1d()`` (modes at +-2, std 0.5), the slope at x = 0
    of the reverse drift :math:`-f + g^2 s` is :math:`-f/x + g^2 (4 m^2 -
    v)/v^2` (m, v the mean coefficient and one mode's variance at t); from
    T = 1 down to t_end = 0.01 it integrates to about 10 on the tour's VE,
    VP and sub-VP alike (9.97, 9.47, 9.59): neighbouring paths there
    separate by a factor of about :math:`e^{10} \approx 2 \times 10^4`.
    A discretization error sends such paths to the other mode (an error of
    4), and the fraction of them falls like 1/N, an :math:`N^{-1/2}` term in
    the RMS error. Measured (4000 paths, t_end = 0.01, reference 65536
    steps): on VE, 6.6% of paths end in the other mode at N = 32, 0.4% at
    512, 0.075% at 2048, and they carry about 90% of the mean-square error;
    the fitted order for N = 32..512 is 0.67 on VE (0.75 on VP, 0.79 on
    sub-VP) with a reference of 8192 or 65536 steps alike, and 0.68, 0.67,
    0.67 on VE for t_end = 0.001, 0.01, 0.1, while Gaussian data (a linear
    score, no boundary) give 1.02 [1.00, 1.03] on VE and VP in the same
    setting. Order 1 holds only once
    :math:`h e^{\int \lambda}` is small against the modes' separation,
    far beyond practical N; the measured order (between 1/2 and 1) is
    pre-asymptotic, not a defect. The weak error does not see the swaps of
    paths between modes.
    """
    steps, reference, ref, runs = _coupled_runs(process, x0, steps, score, direction, method,
                                                reference_steps, rng, kwargs)
    return _strong_study(steps, reference, ref, runs)


def _strong_study(steps, reference, ref, runs):
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

#: Quantiles of the null distribution reported as the same-law band of a
#: :class:`Distance`: 90% of distances between two samples of one law fall inside.
BAND = (0.05, 0.95)


@dataclass(frozen=True)
class Distance:
    r"""A distance between two samples and the spread of the same statistic
    between two samples of **one** law at the same sizes (its null
    distribution), with the p-value of the observed distance under that null.

    Attributes
    ----------
    value : float
        The distance.
    floor : float or None
        Median of the null distribution: what the statistic reads between two
        samples of one law at these sizes. None when no null was computed.
    n : (int, int) or None
        The two sample sizes.
    floor_low, floor_high : float or None
        The ``BAND`` (5% and 95%) quantiles of the null distribution: 90% of
        same-law distances fall in ``[floor_low, floor_high]``, and
        ``floor_high`` is the critical value of a test at level 0.05.
    floor_std : float or None
        Standard deviation of the null distribution.
    pvalue : float or None
        Monte Carlo p-value of the hypothesis "both samples come from one
        law": :math:`(1 + \#\{b : D_b \ge D\}) / (1 + B)` over the B null
        values :math:`D_b`. It is an exact-level test for any B, because under
        the hypothesis the observed D is exchangeable with the :math:`D_b`
        (Phipson & Smyth 2010, "Permutation p-values should never be zero");
        its smallest value is 1 / (1 + B).
    n_null : int
        B, the number of null values (0: none).
    null : str
        How the null values were drawn: ``"permutation"`` (random splits of
        the pooled samples, the default of every distance here),
        ``"law"`` (pairs of fresh samples of a known law, see
        :meth:`from_null`) or ``"none"``.

    Notes
    -----
    ``Distance(value, floor)`` still constructs a bare distance with a floor
    and no band.
    """

    value: float
    floor: float = None
    n: tuple = None
    floor_low: float = None
    floor_high: float = None
    floor_std: float = None
    pvalue: float = None
    n_null: int = 0
    null: str = "none"

    @classmethod
    def from_null(cls, value, null_values, n=None, null="law"):
        """A Distance whose floor, band and p-value come from ``null_values``,
        distances between pairs of samples of one law computed exactly as
        ``value`` was (same statistic, same sizes, same projections).

        With a known law (e.g. a :class:`~diffsde.GaussianMixture`), draw B
        pairs of fresh samples of it, compute the statistic on each pair, and
        pass them here: under the hypothesis "the tested sample comes from the
        law", ``value`` and the B null values are exchangeable, so the
        p-value has an exact level. One null set serves every sample tested
        against the same law at the same sizes.
        """
        null_values = np.asarray(null_values, dtype=np.float64)
        if null_values.ndim != 1 or null_values.size < 2 or not np.all(np.isfinite(null_values)):
            raise ValueError(f"null_values must be a 1-D array of at least 2 finite distances; "
                             f"got shape {null_values.shape}")
        choice(null, "null", ("permutation", "law"))
        value = real_scalar(value, "value", "non_negative")
        low, mid, high = np.quantile(null_values, [BAND[0], 0.5, BAND[1]])
        return cls(value, float(mid), None if n is None else tuple(int(k) for k in n),
                   float(low), float(high), float(null_values.std(ddof=1)),
                   float((1 + np.count_nonzero(null_values >= value)) / (1 + null_values.size)),
                   int(null_values.size), null)

    def consistent(self, level=0.05):
        """True if the two samples are consistent with one law at this level
        (``pvalue > level``), False if they are distinguishable."""
        if self.pvalue is None:
            raise ValueError("this Distance has no p-value (it was computed with n_permutations=0)")
        return self.pvalue > real_scalar(level, "level", "in_unit_interval")

    def verdict(self, level=0.05):
        """The test's result as a sentence, e.g. ``"consistent at the 95%
        level (p = 0.42)"`` or ``"distinguishable at the 95% level (p = 0.01)"``."""
        word = "consistent" if self.consistent(level) else "distinguishable"
        return f"{word} at the {100 * (1 - level):g}% level (p = {self.pvalue:.2g})"

    def __float__(self):
        return float(self.value)

    def __repr__(self):
        text = f"Distance({self.value:.4g}"
        if self.floor is not None:
            text += f", floor {self.floor:.4g}"
        if self.floor_low is not None:
            text += (f", {100 * (BAND[1] - BAND[0]):g}% band [{self.floor_low:.4g}, {self.floor_high:.4g}]"
                     f" from {self.n_null} {'permutations' if self.null == 'permutation' else 'same-law pairs'}")
        if self.pvalue is not None:
            text += f", p = {self.pvalue:.2g}"
        if self.n is not None:
            text += f", n = {self.n}"
        return text + ")"


def _samples_1d(x, name):
    x = np.asarray(array_in(x, name, np.float64)[0], dtype=np.float64).ravel()
    if x.size < 2 or not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must hold at least 2 finite numbers")
    return x


def _n_permutations(n_permutations):
    n = integer(n_permutations, "n_permutations", 0)
    if n == 1:
        # one permutation gives no null distribution to compare with
        raise ValueError("n_permutations must be 0 (no null distribution) or an int >= 2; got 1")
    return n


def _exponent(p):
    return real_scalar(p, "p", "at_least", 1)


def _with_null(statistic, x, y, gen, n_permutations):
    """The statistic of (x, y) and its permutation null: the same statistic on
    random splits of the pooled rows into the two sizes."""
    value = statistic(x, y)
    n_x = x.shape[-1]
    if n_permutations == 0:
        return Distance(value, None, (n_x, y.shape[-1]))
    pooled = np.concatenate([x, y], axis=-1)
    null = np.empty(n_permutations)
    for b in range(n_permutations):
        perm = gen.permutation(pooled.shape[-1])
        null[b] = statistic(pooled[..., perm[:n_x]], pooled[..., perm[n_x:]])
    return Distance.from_null(value, null, (n_x, y.shape[-1]), null="permutation")


@functools.lru_cache(maxsize=16)
def _quantile_coupling(n, m):
    """The monotone coupling of the uniform empirical measures on n and m
    sorted atoms: on the k-th interval of the merged breakpoints
    {i/n} U {j/m} of [0, 1], both quantile functions are constant, equal to
    atoms ix[k] and iy[k]; du[k] is the interval's length."""
    lcm = math.lcm(n, m)
    if lcm < 2**62:
        # integer breakpoints i (L/n) and j (L/m): exact, so equal fractions merge
        cx = np.arange(1, n + 1, dtype=np.int64) * (lcm // n)
        cy = np.arange(1, m + 1, dtype=np.int64) * (lcm // m)
        scale = lcm
    else:  # only for sizes beyond any memory; ulp-level breakpoint error
        cx, cy, scale = np.arange(1, n + 1) / n, np.arange(1, m + 1) / m, 1
    u = np.union1d(cx, cy)
    du = np.diff(u, prepend=0) / scale
    # on (u[k-1], u[k]] the quantile of x is its atom i with i/n < u[k] <= (i+1)/n
    ix = np.minimum(np.searchsorted(cx, u, side="left"), n - 1)
    iy = np.minimum(np.searchsorted(cy, u, side="left"), m - 1)
    return du, ix, iy


def _wpp(a, b, p):
    """W_p^p between the empirical measures of the rows of a (k, n) and b
    (k, m), row by row: the quantile coupling on the merged breakpoints."""
    a, b = np.sort(a, axis=-1), np.sort(b, axis=-1)
    n, m = a.shape[-1], b.shape[-1]
    if n == m:
        return np.mean(np.abs(a - b) ** p, axis=-1)
    du, ix, iy = _quantile_coupling(n, m)
    return (np.abs(a[..., ix] - b[..., iy]) ** p) @ du


def wasserstein_1d(x, y, p=1, *, rng=0, n_permutations=99):
    r"""The p-Wasserstein distance between the empirical measures of two 1-D
    samples, exactly, for any sizes n and m and any p >= 1.

    .. math::

        W_p(\mu_x, \mu_y) = \Big(\int_0^1 |F_x^{-1}(u) - F_y^{-1}(u)|^p\,du\Big)^{1/p}

    In one dimension the monotone (quantile) coupling is optimal for every
    convex cost (Villani 2003, *Topics in Optimal Transportation*, Thm 2.18).
    Both quantile functions are step functions, constant between the merged
    breakpoints :math:`\{i/n\} \cup \{j/m\}`, so the integral is a finite
    sum over at most n + m - 1 intervals. For p = 1 this equals
    ``scipy.stats.wasserstein_distance``.

    Parameters
    ----------
    x, y : array_like
        The two samples (flattened), each at least 2 finite numbers.
    p : float >= 1
    rng : SPEC 7 seed
        For the permutations of the null distribution.
    n_permutations : int
        B, the number of random splits of the pooled samples on which the
        null distribution (floor, band, p-value) is computed; 0 for the
        distance alone. Cost: B + 1 sorts of n + m numbers.

    Returns
    -------
    Distance
        ``value`` and its permutation null (see :class:`Distance`).
    """
    p = _exponent(p)
    x, y = _samples_1d(x, "x"), _samples_1d(y, "y")
    n_permutations = _n_permutations(n_permutations)

    def statistic(a, b):
        return float(_wpp(a, b, p) ** (1 / p))

    return _with_null(statistic, x, y, np.random.default_rng(rng), n_permutations)


def _ks(x, y):
    xs, ys = np.sort(x), np.sort(y)
    grid = np.concatenate([xs, ys])
    fx = np.searchsorted(xs, grid, side="right") / xs.size
    fy = np.searchsorted(ys, grid, side="right") / ys.size
    return float(np.max(np.abs(fx - fy)))


def ks_statistic(x, y, *, rng=0, n_permutations=99):
    """The two-sample Kolmogorov-Smirnov statistic ``sup |F_x - F_y|`` with its
    permutation null (see :func:`wasserstein_1d` for ``rng`` and
    ``n_permutations``)."""
    x, y = _samples_1d(x, "x"), _samples_1d(y, "y")
    return _with_null(_ks, x, y, np.random.default_rng(rng), _n_permutations(n_permutations))


def sliced_wasserstein(x, y, n_projections=128, *, p=2, rng=0, n_permutations=19):
    r"""Sliced p-Wasserstein distance between samples in d dimensions,

    .. math::

        SW_p(\mu_x, \mu_y) = \Big(\frac{1}{P}\sum_{k=1}^{P} W_p^p(\theta_k^T x, \theta_k^T y)\Big)^{1/p}

    over P = ``n_projections`` random unit directions :math:`\theta_k`
    (Rabin, Peyre, Delon & Bernot 2011; Bonneel et al. 2015), each 1-D
    distance exact as in :func:`wasserstein_1d`. It is a Monte Carlo
    estimate of the sliced distance over the whole sphere, and smaller than
    :math:`W_p` itself (about :math:`W_p/\sqrt{d}` for a shift): label it
    "sliced W_p with P projections", never "W_p".

    Parameters
    ----------
    x, y : arrays (n, d) and (m, d)
    n_projections : int >= 1
    p : float >= 1
    rng : SPEC 7 seed
        Draws the directions first (so one seed gives the same directions,
        and the same statistic, for any x and y), then the permutations.
    n_permutations : int
        B splits of the pooled rows for the null distribution; 0 for the
        distance alone. Cost: B + 1 sorts of P (n + m) numbers, so the
        default is 19 (99 for the 1-D distances): the smallest B whose
        p-value can reach 0.05, a test of exact level 0.05, with a coarse
        band. Ask for 99 or more for a finer band and p-value.

    Returns
    -------
    Distance
    """
    p = _exponent(p)
    x = np.asarray(array_in(x, "x", np.float64)[0], dtype=np.float64)
    y = np.asarray(array_in(y, "y", np.float64)[0], dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must be (n, d) with equal d; got {x.shape}, {y.shape}")
    if x.shape[0] < 2 or y.shape[0] < 2 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError(f"x and y must hold at least 2 rows of finite numbers each; got {x.shape[0]} "
                         f"and {y.shape[0]} rows")
    n_projections = integer(n_projections, "n_projections", 1)
    n_permutations = _n_permutations(n_permutations)
    gen = np.random.default_rng(rng)
    dirs = gen.standard_normal((int(n_projections), x.shape[1]))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)

    def statistic(a, b):  # a, b: projections (P, n) and (P, m)
        return float(np.mean(_wpp(a, b, p)) ** (1 / p))

    # project once: a permutation of the rows permutes the projections' columns
    return _with_null(statistic, dirs @ x.T, dirs @ y.T, gen, n_permutations)


def moment_errors(x, mean, var):
    """Sample mean and variance (per coordinate) against known values.

    Returns
    -------
    dict with ``mean_error``, ``mean_stderr``, ``var_error``, ``var_stderr``
    (arrays over coordinates; the variance's standard error from the sample
    fourth moment, so it holds for non-Gaussian laws too).
    """
    x = np.asarray(array_in(x, "x", np.float64)[0], dtype=np.float64)
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


# ---- error against score evaluations -------------------------------------------

@dataclass(frozen=True)
class SamplerCurve:
    """One sampler's error at a ladder of budgets.

    Attributes
    ----------
    label : str
        The method's name, with its options when given (``"em, alpha=0.0"``).
    method : str
    options : dict
    deterministic : bool
        The table draws no noise (with these options).
    steps, nfe : ndarray of int
        Steps of each run and its score evaluations.
    error : ndarray
        The error of each run (see :class:`ErrorCurves`).
    stderr : ndarray or None
        Its Monte Carlo standard error; None for exact errors.
    """

    label: str
    method: str
    options: dict
    deterministic: bool
    steps: np.ndarray
    nfe: np.ndarray
    error: np.ndarray
    stderr: np.ndarray = None


@dataclass(frozen=True)
class ErrorCurves:
    """The result of :func:`error_vs_nfe`.

    Attributes
    ----------
    curves : tuple of SamplerCurve
    metric : str
        ``"W2"`` or ``"KL"`` (exact, Gaussian data) or ``"sliced W2 (P projections)"`` (Monte Carlo).
    exact : bool
    floor : float or None
        Monte Carlo only: the median of the same statistic between two
        samples of the target at the run's sizes, the error an exact
        sampler reads; ``floor_band`` its 5% to 95% range.
    floor_band : (float, float) or None
    title : str
        The setting: process, data, grid, paths.
    budgets : tuple of int
        The budgets aimed at.
    """

    curves: tuple
    metric: str
    exact: bool
    floor: float = None
    floor_band: tuple = None
    title: str = ""
    budgets: tuple = ()

    def best(self, nfe, deterministic=None):
        """The label of the sampler with the smallest error among the runs
        with at most ``nfe`` score evaluations (optionally only the
        deterministic or the stochastic ones), and that error."""
        found = []
        for c in self.curves:
            if deterministic is not None and c.deterministic != deterministic:
                continue
            ok = c.nfe <= nfe
            if ok.any():
                found.append((float(np.min(c.error[ok])), c.label))
        if not found:
            raise ValueError(f"no run has at most nfe = {shown(nfe)} score evaluations")
        error, label = min(found)
        return label, error

    def curve(self, label):
        """The curve of one sampler (ValueError listing the labels)."""
        for c in self.curves:
            if c.label == label:
                return c
        raise ValueError(f"no sampler {shown(label)}; labels: {', '.join(c.label for c in self.curves)}")


def _sampler_list(process, methods):
    if methods is None:
        methods = tuple(m for m in registry.available(process) if not registry.get(m).adaptive)
    out = []
    for entry in methods:
        name, options = (entry, {}) if isinstance(entry, str) else (entry[0], dict(entry[1]))
        label = name + "".join(f", {k}={v}" for k, v in options.items())
        out.append((label, name, options, registry.get(name)))
    return out


def error_vs_nfe(process, data, budgets=(8, 16, 32, 64, 128), methods=None, *, grid="logsnr", t_end=None,
                 metric="w2", paths=4000, repeats=3, n_projections=64, rng=0):
    r"""Each sampler's error against its number of score evaluations (NFE).

    For each method and budget B the run takes the most steps N whose run
    makes at most B score evaluations (counted on the method's step table,
    so a two-stage method gets about half the steps of a one-stage one and
    ``plms`` pays for its warm-up once, not on every step; N = 1 when even
    one step costs more than B) on the grid ``grid`` from the
    process's ``default_t_start`` down to ``t_end``, with the exact score,
    from the exact marginal at t_start, and its output is compared with the
    exact marginal at t_end:

    - Gaussian data (one component): the exact W2 or KL of
      :func:`exact_output_law`, no Monte Carlo error;
    - a mixture: the sliced W2 (:func:`sliced_wasserstein`,
      ``n_projections`` fixed directions) between ``paths`` outputs and a
      fresh sample of the target, averaged over ``repeats`` independent
      runs, with its standard error over the repeats; the floor is the
      same statistic between two samples of the target (``max(12, 2
      repeats)`` pairs), what an exact sampler reads.

    Parameters
    ----------
    process : AffineSDE
    data : GaussianMixture or LinearScore
        One Gaussian component (or a LinearScore): exact errors; several:
        Monte Carlo.
    budgets : sequence of int
        Score evaluations aimed at (each run reports its actual NFE).
    methods : sequence, optional
        Method names, or ``(name, options)`` pairs; default every method of
        ``ds.methods.available(process)`` with its default options.
    grid : str
        A function of :mod:`diffsde.grids` (``"logsnr"``, ``"karras"``,
        ``"uniform"``, ``"quadratic"``).
    t_end : float, optional
        Default: the process's ``default_t_end``.
    metric : {"w2", "kl"}
        Gaussian data only.
    paths, repeats, n_projections, rng
        Mixture data only.

    Returns
    -------
    ErrorCurves
    """
    metric = choice(metric, "metric", ("w2", "kl"))
    make_grid = getattr(grids, choice(grid, "grid", tuple(grids.__all__)))
    exact = isinstance(data, LinearScore) or getattr(data, "K", None) == 1
    budgets = [integer(b, "budgets", 1) for b in (budgets if np.ndim(budgets) else [budgets])]
    samplers = _sampler_list(process, methods)
    if not exact:
        paths = integer(paths, "paths", 2)
        repeats = integer(repeats, "repeats", 2)
    base = np.random.default_rng(rng)
    seeds = base.integers(0, 2**62, size=4)
    curves = []
    floor = band = None
    if not exact:
        t_start = float(process.default_t_start)
        t_stop = float(process.default_t_end if t_end is None else t_end)
        target = data.marginal_law(process, t_stop)
        null = [sliced_wasserstein(target.sample(paths, rng=[seeds[0], 2 * i]),
                                   target.sample(paths, rng=[seeds[0], 2 * i + 1]),
                                   n_projections, rng=int(seeds[1]), n_permutations=0).value
                for i in range(max(12, 2 * repeats))]
        floor = float(np.median(null))
        band = tuple(float(q) for q in np.quantile(null, BAND))
        fresh = [target.sample(paths, rng=[seeds[2], r]) for r in range(repeats)]
        starts = [data.marginal_law(process, t_start).sample(paths, rng=[seeds[3], r]) for r in range(repeats)]
    for label, name, options, record in samplers:
        tables = functools.lru_cache(maxsize=None)(
            lambda n, name=name, options=options: _methods_table(process, name, make_grid(process, n, t_end=t_end),
                                                                 options))
        steps = sorted({_steps_within(b, lambda n: tables(n).nfe) for b in budgets})
        nfe, error, stderr, deterministic = [], [], [], True
        for n in steps:
            ts = make_grid(process, n, t_end=t_end)
            table = tables(n)
            deterministic = deterministic and not bool(table.needs_noise.any())
            nfe.append(table.nfe)
            if exact:
                law = exact_output_law(process, data, name, ts=ts, **options)
                error.append(law.w2 if metric == "w2" else law.kl)
            else:
                values = []
                for r in range(repeats):
                    out = reverse(process, data, starts[r], ts=ts, method=name, rng=[seeds[3], r, n], **options)
                    values.append(sliced_wasserstein(np.asarray(out.x).reshape(paths, -1), fresh[r],
                                                     n_projections, rng=int(seeds[1]), n_permutations=0).value)
                error.append(float(np.mean(values)))
                stderr.append(float(np.std(values, ddof=1) / math.sqrt(repeats)))
        curves.append(SamplerCurve(label, name, options, deterministic, np.array(steps), np.array(nfe),
                                   np.array(error), np.array(stderr) if not exact else None))
    name = {"w2": "W2", "kl": "KL"}[metric] if exact else f"sliced W2 ({n_projections} projections)"
    what = "exact" if exact else f"Monte Carlo, {paths:,} paths x {repeats} runs"
    title = f"{type(process).__name__}, {grid} grid, exact score, from the exact marginal ({what})"
    return ErrorCurves(tuple(curves), name, exact, floor, band, title, tuple(budgets))


def _steps_within(budget, nfe_of):
    """The most steps n >= 1 with nfe_of(n) <= budget (1 when none), by
    bisection: nfe_of is increasing and at least n (each step evaluates)."""
    if nfe_of(1) > budget:
        return 1
    lo, hi = 1, budget
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if nfe_of(mid) <= budget else (lo, mid - 1)
    return lo


def _methods_table(process, name, ts, options):
    return registry.table(process, name, ts, **options)
