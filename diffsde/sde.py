r"""The forward SDEs of score-based diffusion (Song et al. 2021), each in one
short class, and the reverse-time SDE of derivation 004.

All three are linear with additive noise,

.. math:: dx = f(t)\, x\, dt + g(t)\, dW,

so x_t | x_0 is Gaussian, x_t = m(t) x_0 + s(t) z, in closed form:

=========  ====================  ==========================  ===========================
SDE        f(t)                  g(t)^2                      (m, s)
=========  ====================  ==========================  ===========================
VP         -beta/2               beta                        (e^{-B/2}, sqrt(1 - e^{-B}))
sub-VP     -beta/2               beta (1 - e^{-2B})          (e^{-B/2}, 1 - e^{-B})
VE         0                     d sigma^2 / dt              (1, sqrt(sigma^2 - sigma(0)^2))
=========  ====================  ==========================  ===========================

with B(t) = int_0^t beta. The VE marginal is exact for the SDE started at
t = 0; score_sde uses sigma(t) instead, which counts sigma(0) twice.
"""
import functools
import math
import warnings

import numpy as np

from ._frameworks import array_in, array_out
from ._validation import along_batch, callable_of, real_array, real_scalar, shown, times, working_dtype
from ._rng import STREAM_INITIAL, fill_normal, key_from_rng, standard_normal
from .methods._view import GridView, ddpm_chain_view, marginal_columns
from .schedules import CosineBeta, GeometricSigma, LinearBeta, PiecewiseBeta, PiecewiseSigma
from .scores import BoundScore


#: Ridders' tableau for numerical derivatives: the first step is
#: DERIVATIVE_STEP * T, each next one DERIVATIVE_SHRINK times smaller.
DERIVATIVE_STEP = 0.02
DERIVATIVE_SHRINK = 1.4
DERIVATIVE_LEVELS = 12
#: Times differentiated at once (the tableau's memory is ~25 arrays of this size).
DERIVATIVE_BLOCK = 2**16
#: Bisection steps of the numerical inverses t(sigma) and t(lambda): enough
#: to pin t to rounding in [0, T] (2**-60 of T).
INVERSE_ITERATIONS = 60
INVERSE_GRID = 1024


def _real_values(value, t, what):
    """A callable's values as float64 of t's shape (a scalar for a scalar t)."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{what} must return real numbers; got dtype {arr.dtype}")
    try:
        arr = np.broadcast_to(arr.astype(np.float64), np.shape(t))
    except ValueError:
        raise ValueError(f"{what} must return one value per time (shape {np.shape(t)}); "
                         f"got shape {arr.shape}") from None
    return np.array(arr) if arr.ndim else float(arr)


def derivative(fn, t, T):
    r"""dF/dt of a smooth vectorized F on [0, T] by Ridders' method.

    Central differences :math:`(F(t+h) - F(t-h))/2h` (error series in
    :math:`h^2, h^4, \dots`) inside, one-sided second-order differences
    :math:`\pm(-3F(t) + 4F(t \pm h) - F(t \pm 2h))/2h` (error series in
    :math:`h^2, h^3, \dots`) within ``DERIVATIVE_STEP * T`` of an end, so F is
    never evaluated outside [0, T]. Steps start at 0.02 T and shrink by 1.4
    for 12 levels; Richardson extrapolation over the levels (a Neville
    tableau) keeps, per time, the entry with the smallest error estimate
    (Ridders 1982; Press et al., Numerical Recipes, section 5.7). For smooth
    F whose derivatives vary on time scales down to about T/20 this gives
    about 1e-11 relative inside and 1e-10 at the ends (tests/test_processes.py
    measures the VP, sub-VP and VE schedules); kinks (piecewise schedules)
    are not differentiable and get no such accuracy.
    """
    t = np.asarray(t, dtype=np.float64)
    if t.size > DERIVATIVE_BLOCK:
        # the tableau holds about 25 arrays of t's size: bound its memory
        flat = t.ravel()
        return np.concatenate([derivative(fn, flat[i:i + DERIVATIVE_BLOCK], T)
                               for i in range(0, flat.size, DERIVATIVE_BLOCK)]).reshape(t.shape)
    scalar = t.ndim == 0
    t = np.atleast_1d(t)
    h = DERIVATIVE_STEP * T
    side = np.where(t - h < 0, 1.0, np.where(t + h > T, -1.0, 0.0))
    central = side == 0
    sign = np.where(central, 1.0, side)
    base = fn(t) if np.any(~central) else None

    def estimate(h):
        out = np.empty_like(t)
        if np.any(central):
            tc = t[central]
            out[central] = (np.asarray(fn(tc + h)) - np.asarray(fn(tc - h))) / (2 * h)
        if np.any(~central):
            to, so = t[~central], sign[~central]
            f0 = np.broadcast_to(base, t.shape)[~central]
            out[~central] = (-3 * f0 + 4 * np.asarray(fn(to + so * h)) - np.asarray(fn(to + 2 * so * h))) \
                / (2 * so * h)
        return out

    con = DERIVATIVE_SHRINK
    prev = [estimate(h)]
    best, err = prev[0].copy(), np.full(t.shape, np.inf)
    active = np.ones(t.shape, dtype=bool)
    for i in range(1, DERIVATIVE_LEVELS):
        h /= con
        row = [estimate(h)]
        for j in range(1, i + 1):
            fac = np.where(central, con ** (2 * j), con ** (j + 1))
            row.append((row[j - 1] * fac - prev[j - 1]) / (fac - 1))
            errt = np.maximum(np.abs(row[j] - row[j - 1]), np.abs(row[j] - prev[j - 1]))
            better = active & (errt <= err)
            best = np.where(better, row[j], best)
            err = np.where(better, errt, err)
        # Ridders' stop: once the highest order gets worse, rounding dominates
        active &= ~(np.abs(row[i] - prev[i - 1]) >= 2 * err)
        if not np.any(active):
            break
        prev = row
    return float(best[0]) if scalar else best


class AffineSDE:
    r"""A Gaussian diffusion path given by its marginal coefficients: the
    protocol every process of diffsde follows.

    .. math:: x_t = m(t)\, x_0 + s(t)\, z, \qquad z \sim N(0, I), \quad t \in [0, T].

    Such a path is the marginal law of the linear SDE
    :math:`dx = f(t)\, x\, dt + g(t)\, dW` with

    .. math:: f = \frac{m'}{m}, \qquad g^2 = \frac{d s^2}{dt} - 2 f s^2.

    Derivation: the mean obeys :math:`d\,E[x_t] = f\, E[x_t]\, dt`, so
    :math:`m' = f m`; the variance :math:`v = s^2` (of x_t given x_0) obeys
    :math:`v' = 2 f v + g^2` (Itô: :math:`d x^2 = 2 x\, dx + g^2 dt`), so
    :math:`g^2 = v' - 2 f v`. The VP, sub-VP and VE SDEs of Song et al.
    (2021), the EDM parametrization of Karras et al. (2022) and the linear
    path of rectified flow / flow matching (Liu et al. 2022; Lipman et al.
    2022) are all of this form (:class:`VPSDE`, :class:`SubVPSDE`,
    :class:`VESDE`, :class:`EDM`, :class:`RectifiedFlow`).

    Parameters
    ----------
    mean, std : callable m(t), s(t)
        Vectorized over a float64 array of times in [0, T] (never called
        with complex numbers or outside [0, T]); m > 0 on [0, T) (m(T) = 0 is
        allowed), s >= 0, and the path must be a diffusion: g^2 >= 0.
        A subclass may instead override the methods :meth:`mean` and
        :meth:`std`, or :meth:`marginal_coefficients` returning (m, s) (and pass nothing
        here); it may override :meth:`drift_coefficient` and
        :meth:`diffusion` with closed forms, as the built-ins do.
    T : float > 0, optional
        The end of the time span; default 1, or the class attribute ``T`` of
        a subclass that sets one.
    dmean, dvar : callable, optional
        dm/dt and d(s^2)/dt. When not given they are computed numerically
        (:func:`derivative`: Ridders-extrapolated differences, one-sided at
        the ends, about 1e-10 relative for smooth m and s).
    name : str, optional
        The name shown by ``repr``.

    Notes
    -----
    What the samplers use beyond (m, s, f, g): the half-log-SNR
    :math:`\lambda(t) = \log(m/s)` (:meth:`lambda_of_t`), the noise level
    :math:`\sigma(t) = s/m` (:meth:`sigma_of_t`) and their inverses
    :meth:`t_of_sigma` and :meth:`t_of_lambda` (closed forms in the
    built-ins, a bracketed bisection here). A reverse run starts at
    ``default_t_start`` (T, unless the path is singular there).
    """

    T: float
    #: "vp" or "ve" for processes whose DDPM or SMLD chain ``reverse``'s chain
    #: methods run on; None for the rest (methods em and ode_heun).
    chain_type = None
    _mean_fn = _std_fn = _dmean_fn = _dvar_fn = None
    _name = None

    def __init__(self, mean=None, std=None, T=None, *, dmean=None, dvar=None, name=None):
        for label, fn in (("mean", mean), ("std", std), ("dmean", dmean), ("dvar", dvar)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{label} must be a callable of t (or None); got {shown(fn)}")
        # a subclass may define mean(t) and std(t), or marginal(t) returning both
        own_marginal = (type(self).marginal is not AffineSDE.marginal
                        or type(self).marginal_coefficients is not AffineSDE.marginal_coefficients)
        if mean is None and type(self).mean is AffineSDE.mean and not own_marginal:
            raise TypeError("AffineSDE needs mean, a callable m(t) (or a subclass defining mean(t))")
        if std is None and type(self).std is AffineSDE.std and not own_marginal:
            raise TypeError("AffineSDE needs std, a callable s(t) (or a subclass defining std(t))")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None; got {shown(name)}")
        if T is None:
            T = getattr(type(self), "T", 1.0)
        self.T = real_scalar(T, "T", "positive")
        self._mean_fn, self._std_fn, self._dmean_fn, self._dvar_fn = mean, std, dmean, dvar
        self._name = name
        self._check_path()

    def _check_path(self):
        """m, s finite on a grid of [0, T], m > 0 before T, s >= 0, g^2 >= 0."""
        grid = np.linspace(0.0, self.T, 257)
        m, s = self.marginal_coefficients(grid)
        for label, v in (("mean", m), ("std", s)):
            bad = np.flatnonzero(~np.isfinite(v))
            if bad.size:
                raise ValueError(f"{label}(t) must be finite on [0, T]; got {float(v[bad[0]])!r} "
                                 f"at t = {float(grid[bad[0]])!r}")
        if np.any(m[:-1] <= 0) or m[-1] < 0:
            i = int(np.flatnonzero(m <= 0)[0])
            raise ValueError(f"mean(t) must be > 0 on [0, T) (and >= 0 at T); got {float(m[i])!r} "
                             f"at t = {float(grid[i])!r}")
        if np.any(s < 0):
            i = int(np.flatnonzero(s < 0)[0])
            raise ValueError(f"std(t) must be >= 0; got {float(s[i])!r} at t = {float(grid[i])!r}")
        self.diffusion(grid[:-1])

    # -- the path -----------------------------------------------------------
    def mean(self, t):
        """m(t), the signal coefficient."""
        if self._mean_fn is None:
            return self.marginal_coefficients(t)[0]
        return self._mean_fn(t)

    def std(self, t):
        """s(t), the noise coefficient."""
        if self._std_fn is None:
            return self.marginal_coefficients(t)[1]
        return self._std_fn(t)

    def marginal_coefficients(self, t):
        """(m(t), s(t)) at time t: x_t = m x_0 + s z exactly."""
        if type(self).marginal is not AffineSDE.marginal:
            # a subclass written against the old name defines marginal(t)
            return type(self).marginal(self, t)
        t = self._check_t(t)
        return (_real_values(self.mean(t), t, "mean(t)"), _real_values(self.std(t), t, "std(t)"))

    def marginal(self, t):
        """Deprecated alias of :meth:`marginal_coefficients` (DeprecationWarning)."""
        warnings.warn("SDE.marginal(t) is deprecated: use marginal_coefficients(t), which names what it "
                      "returns (chains: marginal_coefficients(i); data: marginal_law(process, t))",
                      DeprecationWarning, stacklevel=2)
        return self.marginal_coefficients(t)

    def dmean(self, t):
        """dm/dt (given, or numerical: :func:`derivative`)."""
        t = self._check_t(t)
        if self._dmean_fn is not None:
            return _real_values(self._dmean_fn(t), t, "dmean(t)")
        return derivative(lambda u: _real_values(self.mean(u), u, "mean(t)"), t, self.T)

    def dvar(self, t):
        """d s^2/dt (given, or numerical: :func:`derivative`)."""
        t = self._check_t(t)
        if self._dvar_fn is not None:
            return _real_values(self._dvar_fn(t), t, "dvar(t)")
        return derivative(lambda u: _real_values(self.std(u), u, "std(t)") ** 2, t, self.T)

    # -- the SDE ------------------------------------------------------------
    def drift_coefficient(self, t):
        """f(t) = m'(t) / m(t), with drift(x, t) = f(t) x."""
        t = self._check_t(t)
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.dmean(t) / self.marginal_coefficients(t)[0]

    def diffusion(self, t):
        r"""g(t) = sqrt(d s^2/dt - 2 f s^2).

        Rounding of a numerical derivative may leave g^2 slightly below 0
        where it is 0; a value below -1e-8 of the terms' size (with a floor
        of 1e-12 (m^2 + s^2)/T) means the path is no diffusion (its variance shrinks faster than the drift
        allows), ValueError.
        """
        t = self._check_t(t)
        m, s = self.marginal_coefficients(t)
        f = self.drift_coefficient(t)
        dv = self.dvar(t)
        with np.errstate(invalid="ignore"):
            g2 = dv - 2 * f * s * s
            # the terms' size, and a floor for the rounding of a numerical
            # derivative where both vanish (s = 0 at t = 0)
            scale = np.abs(dv) + np.abs(2 * f * s * s) + 1e-4 * (m * m + s * s) / self.T
        bad = np.asarray(g2 < -1e-8 * scale)
        if np.any(bad):
            i = np.flatnonzero(np.atleast_1d(bad))[0]
            at = float(np.atleast_1d(t)[i])
            raise ValueError(f"g(t)^2 = d s^2/dt - 2 f s^2 is {float(np.atleast_1d(g2)[i]):.6g} < 0 at t = {at!r}: "
                             f"this (m, s) is not the marginal of a diffusion")
        out = np.sqrt(np.maximum(g2, 0.0))
        return out if np.ndim(out) else float(out)

    # -- what the methods see ---------------------------------------------------
    @property
    def capabilities(self):
        """What this process offers the methods (``ds.methods.available``):
        "affine" (f and g^2, for the SDE and ODE methods), plus "ddpm_chain"
        when ``chain_type`` is "vp" (a DDPM chain with abar_k = m(t_k)^2 on
        any grid, from B(t)) or "smld_chain" when it is "ve" (an SMLD chain
        with sigma_k = sigma(t_k))."""
        extra = {"vp": "ddpm_chain", "ve": "smld_chain"}.get(self.chain_type)
        return frozenset({"affine", extra} - {None})

    def grid_view(self, grid):
        """The process on an increasing grid of times in [0, T]: the
        :class:`~diffsde.methods.GridView` the methods build their tables
        from (``grid`` is used as given: ``ds.methods.table`` checks it)."""
        grid = np.asarray(grid, dtype=np.float64)
        m, sd = marginal_columns(*self.marginal_coefficients(grid))
        chain = {}
        if self.chain_type == "vp":
            chain = {"log_abar": -self.integrated_beta(grid),
                     "to_chain": functools.partial(ddpm_chain_view, self, grid)}
        elif self.chain_type == "ve":
            chain = {"sigma2": self.sigma(grid) ** 2}
        return GridView(grid, m, sd, self, self.capabilities,
                        exact=lambda: self.transition(grid[:-1], grid[1:]), **chain)

    # -- noise level and log-SNR ----------------------------------------------
    def sigma_of_t(self, t):
        """The noise level sigma(t) = s(t) / m(t) (infinite where m = 0)."""
        m, s = self.marginal_coefficients(t)
        with np.errstate(divide="ignore"):
            return np.divide(s, m)[()]

    def lambda_of_t(self, t):
        r"""The half-log-SNR :math:`\lambda(t) = \log(m/s) = -\log \sigma(t)`."""
        m, s = self.marginal_coefficients(t)
        with np.errstate(divide="ignore"):
            return (np.log(m) - np.log(s))[()]

    def t_of_sigma(self, sigma):
        """The time where s/m = sigma: a bracketed bisection on sigma(t),
        which must increase strictly on [0, T] (ValueError otherwise)."""
        return self._invert(sigma, "sigma", self.sigma_of_t)

    def t_of_lambda(self, lam):
        r"""The time where :math:`\lambda(t) = \log(m/s)` = ``lam`` (lambda
        must decrease strictly on [0, T]); ``t_of_sigma(exp(-lam))`` where
        :meth:`t_of_sigma` has a closed form."""
        if type(self).t_of_sigma is not AffineSDE.t_of_sigma:
            lam = real_array(lam, "lam")
            with np.errstate(over="ignore"):
                return self.t_of_sigma(np.exp(-lam))
        return self._invert(lam, "lam", lambda t: -self.lambda_of_t(t), negate=True)

    def _invert(self, value, name, fn, negate=False):
        target = real_array(value, name)
        target = -target if negate else target
        grid = np.linspace(0.0, self.T, INVERSE_GRID + 1)
        values = np.asarray(fn(grid), dtype=np.float64)
        steps = np.diff(values)
        if np.any(~(steps > 0)):
            i = int(np.flatnonzero(~(steps > 0))[0])
            word = "decrease" if negate else "increase"
            raise ValueError(f"{name} of t must {word} strictly on [0, T] to be inverted; it does not "
                             f"between t = {float(grid[i])!r} and t = {float(grid[i + 1])!r}")
        lo_v, hi_v = values[0], values[-1]
        slack = 1e-12 * np.maximum(np.abs(values[[0, -1]]), 1e-300)
        outside = (target < lo_v - slack[0]) | (target > hi_v + slack[1]) | np.isnan(target)
        if np.any(outside):
            bad = float((-target if negate else target)[outside].ravel()[0])
            ends = sorted((float(-lo_v if negate else lo_v), float(-hi_v if negate else hi_v)))
            raise ValueError(f"{name} must lie in [{ends[0]:g}, {ends[1]:g}] (its range on [0, T]); got {bad!r}")
        flat = np.clip(target.ravel(), lo_v, hi_v)
        j = np.clip(np.searchsorted(values, flat), 1, INVERSE_GRID)
        lo, hi = grid[j - 1].copy(), grid[j].copy()
        for _ in range(INVERSE_ITERATIONS):
            mid = 0.5 * (lo + hi)
            below = np.asarray(fn(mid), dtype=np.float64) < flat
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        out = (0.5 * (lo + hi)).reshape(target.shape)
        return out if out.ndim else float(out)

    def _in_sigma_range(self, sigma):
        """sigma as float64, inside [sigma(0), sigma(T)] (ValueError otherwise)."""
        sigma = real_array(sigma, "sigma")
        lo, hi = float(self.sigma_of_t(0.0)), float(self.sigma_of_t(self.T))
        # a relative 1e-12 of slack, as for times: sigma(T) evaluated on an
        # array may differ from the scalar's in the last bit
        bad = (sigma < lo * (1 - 1e-12)) | (sigma > hi * (1 + 1e-12))
        if np.any(bad):
            raise ValueError(f"sigma must lie in [{lo:g}, {hi:g}] (s/m on [0, T]); got {float(sigma[bad].ravel()[0])!r}")
        return np.clip(sigma, lo, hi)

    @property
    def default_t_start(self):
        """Where reverse runs start by default: T."""
        return self.T

    @property
    def default_t_end(self):
        """Where the grids of :mod:`diffsde.grids` end by default: 1e-3 T,
        score_sde's sampling epsilon for VP and sub-VP (Song et al. 2021),
        here for any path whose s(0) = 0 makes lambda infinite at t = 0.
        (``reverse`` itself defaults to t_end = 0.)"""
        return 1e-3 * self.T

    # -- derived ---------------------------------------------------------------
    def drift(self, x, t):
        r"""f(x, t) = f(t) x; ``t`` a scalar or shape (batch,)."""
        x = np.asarray(x)
        return along_batch(self.drift_coefficient(times(t, self.T)), x) * x

    def transition(self, t, t_next):
        r"""Exact one-step transition x_{t'} = a x_t + c z between grid times.

        .. math:: a = m(t')/m(t), \quad c = \sqrt{s(t')^2 - a^2 s(t)^2}
        """
        m0, s0 = self.marginal_coefficients(t)
        m1, s1 = self.marginal_coefficients(t_next)
        a = m1 / m0
        return a, np.sqrt(np.maximum(s1 * s1 - (a * s0) ** 2, 0.0))

    def perturb(self, x0, t, rng=None):
        r"""An exact sample of x_t | x_0: m(t) x_0 + s(t) z, z from stream 1.

        ``t`` is a scalar or has shape (batch,) (one time per row of x0).
        A CPU torch tensor or JAX array ``x0`` gives a tensor of its type
        (docs/networks.md, "Tensors as states"); ``t`` may be a tensor too.
        """
        x0, framework = array_in(x0, "x0")
        x0, t = np.asarray(x0), array_in(t, "t")[0]
        dtype = working_dtype(x0.dtype, None, "x0")
        m, s = self.marginal_coefficients(times(t, self.T))
        m, s = along_batch(m, x0), along_batch(s, x0)
        z = fill_normal(np.empty(x0.shape, dtype=dtype), key_from_rng(rng), STREAM_INITIAL)
        return array_out((m * x0 + s * z).astype(dtype, copy=False), framework)

    def prior_std(self):
        """s(T): the prior is N(0, s(T)^2 I)."""
        return float(self.marginal_coefficients(self.T)[1])

    def prior_sample(self, shape, rng=None, dtype=np.float64):
        """Samples of the prior N(0, s(T)^2 I), from stream 1."""
        z = standard_normal(shape, rng=rng, dtype=dtype)
        z *= z.dtype.type(self.prior_std())
        return z

    def prior_logp(self, x):
        r"""log N(x; 0, s(T)^2 I), summed over the event axes: shape (batch,)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 0:
            raise ValueError("x must have a batch axis")
        var = self.prior_std() ** 2
        d = math.prod(x.shape[1:])
        sq = np.sum(x.reshape(x.shape[0], -1) ** 2, axis=1)
        return -0.5 * sq / var - 0.5 * d * np.log(2 * np.pi * var)

    def reverse(self, score, alpha=1.0):
        """The reverse-time SDE with score ``score(x, t)`` (derivation 004)."""
        return ReverseSDE(self, score, alpha)

    def _check_t(self, t):
        return times(t, self.T)

    def __repr__(self):
        if self._name is not None:
            return self._name
        if type(self) is AffineSDE:
            return f"AffineSDE({self._mean_fn!r}, {self._std_fn!r}, T={self.T:g})"
        return f"{type(self).__name__}(T={self.T:g})"


#: The name the package used for the protocol's base before AffineSDE.
SDE = AffineSDE


class VPSDE(SDE):
    r"""Variance-preserving SDE: dx = -beta(t) x / 2 dt + sqrt(beta(t)) dW.

    The continuous limit of DDPM (Ho et al. 2020; derivation 001): with beta_i = beta(t_i) T / N,
    :math:`\sqrt{1 - \beta_i} \approx 1 - \beta_i / 2`.

    Parameters
    ----------
    beta_min, beta_max : float > 0
        beta(t) = beta_min + (beta_max - beta_min) t / T. Any two positive
        values are valid, including beta_min > beta_max: a decreasing
        positive beta still gives a VP SDE (B(t) increases, the variance
        1 - e^{-B} grows towards 1); the names say which end is which
        (beta(0) = beta_min, beta(T) = beta_max), not which is smaller.
    T : float > 0
    """

    #: The chain the chain methods of ``reverse`` run on: DDPM with abar = e^{-B}.
    chain_type = "vp"

    def __init__(self, beta_min=0.1, beta_max=20.0, T=1.0, *, schedule=None):
        self.schedule = schedule if schedule is not None else LinearBeta(beta_min, beta_max, T)
        self.T = self.schedule.T

    @classmethod
    def cosine(cls, s=0.008, T=1.0, max_beta=999.0):
        """Nichol & Dhariwal's cosine schedule (see :class:`~diffsde.schedules.CosineBeta`)."""
        return cls(schedule=CosineBeta(s, T, max_beta))

    @classmethod
    def from_betas(cls, betas, T=1.0):
        """beta(t) = N beta_i / T on (t_{i-1}, t_i]: the SDE of a DDPM chain."""
        return cls(schedule=PiecewiseBeta(betas, T))

    def beta(self, t):
        return self.schedule.beta(self._check_t(t))

    def integrated_beta(self, t):
        """B(t) = int_0^t beta, in closed form."""
        return self.schedule.integral(self._check_t(t))

    def drift_coefficient(self, t):
        return -0.5 * self.beta(t)

    def diffusion(self, t):
        return np.sqrt(self.beta(t))

    def marginal_coefficients(self, t):
        big_b = self.integrated_beta(t)
        return np.exp(-0.5 * big_b), np.sqrt(-np.expm1(-big_b))

    def dmean(self, t):
        """m' = -beta m / 2."""
        return -0.5 * self.beta(t) * np.exp(-0.5 * self.integrated_beta(t))

    def dvar(self, t):
        """(1 - e^{-B})' = beta e^{-B}."""
        return self.beta(t) * np.exp(-self.integrated_beta(t))

    def t_of_sigma(self, sigma):
        """sigma^2 = e^B - 1, so B = log1p(sigma^2), inverted in closed form
        for a linear beta (numerically for other schedules)."""
        sigma = self._in_sigma_range(sigma)
        return self._t_of_integral(np.log1p(sigma * sigma), sigma)

    def _t_of_integral(self, big_b, sigma):
        if not isinstance(self.schedule, LinearBeta):
            return AffineSDE.t_of_sigma(self, sigma)
        # B = a t + b t^2 / (2T); the root without cancellation
        a, b = self.schedule.beta_min, (self.schedule.beta_max - self.schedule.beta_min) / self.T
        t = np.minimum(2 * big_b / (a + np.sqrt(np.maximum(a * a + 2 * b * big_b, 0.0))), self.T)
        return t[()] if isinstance(t, np.ndarray) else float(t)

    def transition(self, t, t_next):
        """a = e^{-dB/2}, c = sqrt(1 - e^{-dB}): no cancellation at small steps."""
        db = self.integrated_beta(t_next) - self.integrated_beta(t)
        return np.exp(-0.5 * db), np.sqrt(-np.expm1(-db))

    def __repr__(self):
        return f"VPSDE({self.schedule!r}, T={self.T:g})"


class SubVPSDE(VPSDE):
    r"""Sub-VP SDE: dx = -beta x / 2 dt + sqrt(beta (1 - e^{-2B(t)})) dW.

    Its marginal variance (1 - e^{-B})^2 stays below the VP one (Song et al. 2021).
    """

    #: No chain: the chain methods need the VP or VE form.
    chain_type = None

    def diffusion(self, t):
        big_b = self.integrated_beta(t)
        return np.sqrt(self.beta(t) * -np.expm1(-2 * big_b))

    def marginal_coefficients(self, t):
        big_b = self.integrated_beta(t)
        return np.exp(-0.5 * big_b), -np.expm1(-big_b)

    def dvar(self, t):
        """((1 - e^{-B})^2)' = 2 (1 - e^{-B}) beta e^{-B}."""
        big_b = self.integrated_beta(t)
        return 2 * -np.expm1(-big_b) * self.beta(t) * np.exp(-big_b)

    def t_of_sigma(self, sigma):
        """sigma = s/m = 2 sinh(B/2), so B = 2 asinh(sigma/2)."""
        sigma = self._in_sigma_range(sigma)
        return self._t_of_integral(2 * np.arcsinh(0.5 * sigma), sigma)

    def transition(self, t, t_next):
        return SDE.transition(self, t, t_next)

    def __repr__(self):
        return f"SubVPSDE({self.schedule!r}, T={self.T:g})"


class VESDE(SDE):
    r"""Variance-exploding SDE: dx = sqrt(d sigma(t)^2 / dt) dW.

    The continuous limit of SMLD/NCSN (Song & Ermon 2019; derivation 000):
    x_i = x_{i-1} + sqrt(sigma_i^2 - sigma_{i-1}^2) z.

    Parameters
    ----------
    sigma_min, sigma_max : float, 0 < sigma_min < sigma_max
        sigma(t) = sigma_min (sigma_max / sigma_min)^{t/T}. Unlike beta of a
        VP SDE, sigma must increase: g(t)^2 = d sigma^2 / dt would be
        negative for a decreasing sigma, which no SDE has (ValueError).
    T : float > 0
    """

    #: The chain the chain methods of ``reverse`` run on: SMLD with sigma(t_k).
    chain_type = "ve"

    def __init__(self, sigma_min=0.01, sigma_max=50.0, T=1.0, *, schedule=None):
        self.schedule = schedule if schedule is not None else GeometricSigma(sigma_min, sigma_max, T)
        self.T = self.schedule.T

    @classmethod
    def from_sigmas(cls, sigmas, T=1.0):
        """sigma(t_i) = sigmas[i] on t_i = i T / N, sigma^2 linear in between.

        ``sigmas`` has N + 1 entries, sigma(t_0) ... sigma(t_N), increasing.
        """
        return cls(schedule=PiecewiseSigma(sigmas, T))

    def sigma(self, t):
        return self.schedule.sigma(self._check_t(t))

    def drift_coefficient(self, t):
        return np.zeros_like(np.asarray(self._check_t(t), dtype=np.float64))[()]

    def diffusion(self, t):
        return np.sqrt(self.schedule.dsigma2_dt(self._check_t(t)))

    def dmean(self, t):
        return np.zeros_like(np.asarray(self._check_t(t), dtype=np.float64))[()]

    def dvar(self, t):
        return self.schedule.dsigma2_dt(self._check_t(t))

    def t_of_sigma(self, sigma):
        """s/m = sqrt(sigma(t)^2 - sigma(0)^2); closed form for the geometric
        schedule, t = T log1p(sigma^2 / sigma_min^2) / (2 log(sigma_max / sigma_min))."""
        if not isinstance(self.schedule, GeometricSigma):
            return AffineSDE.t_of_sigma(self, sigma)
        sigma = self._in_sigma_range(sigma)
        sch = self.schedule
        t = np.minimum(self.T * np.log1p((sigma / sch.sigma_min) ** 2) / (2 * sch._log_ratio), self.T)
        return t[()] if isinstance(t, np.ndarray) else float(t)

    @property
    def default_t_end(self):
        """1e-5 T, score_sde's sampling epsilon for VE (there s/m is about
        sigma_min sqrt(2e-5 log(sigma_max/sigma_min)) for the geometric schedule)."""
        return 1e-5 * self.T

    def marginal_coefficients(self, t):
        added = self.schedule.variance_added(self._check_t(t))
        return np.ones_like(added)[()], np.sqrt(added)

    def transition(self, t, t_next):
        added = self.schedule.variance_added(self._check_t(t_next)) - self.schedule.variance_added(self._check_t(t))
        return np.ones_like(added)[()], np.sqrt(np.maximum(added, 0.0))

    def __repr__(self):
        return f"VESDE({self.schedule!r}, T={self.T:g})"


class ReverseSDE:
    r"""The reverse-time SDE of a forward SDE, in forward time (Anderson 1982;
    derivation 004).

    .. math::

        dx = \left[f(x, t) - \frac{1 + \alpha^2}{2} g(t)^2 \nabla_x \log p_t(x)\right] dt
             + \alpha\, g(t)\, d\bar W, \qquad dt < 0,

    run from t = T down to 0. Every alpha >= 0 has the marginals p_t of the
    forward process: alpha = 1 is Anderson's reverse SDE, alpha = 0 the
    probability-flow ODE. (Derivation 004 writes it in tau = T - t with d tau > 0,
    where the drift changes sign.)
    """

    def __init__(self, sde, score, alpha=1.0):
        if not isinstance(sde, SDE):
            raise TypeError(f"sde must be a VPSDE, SubVPSDE, VESDE, EDM, RectifiedFlow or another AffineSDE; "
                            f"got {type(sde).__name__}")
        callable_of(score, "score", "score(x, t)")
        alpha = real_scalar(alpha, "alpha", "non_negative")
        self.sde, self.score, self.alpha = sde, score, alpha
        self.T = sde.T

    def drift(self, x, t):
        """f(x, t) - (1 + alpha^2)/2 g(t)^2 score(x, t).

        ``t`` is one time, or one per row (shape ``(batch,)``). The exact
        score of known data (``data.score(sde)``) takes one time per call: at
        per-row times it is evaluated once per distinct time, on the rows at
        that time. Any other callable receives ``t`` as given.
        """
        x = np.asarray(x)
        g2 = along_batch(self.sde.diffusion(t) ** 2, x)
        return self.sde.drift(x, t) - 0.5 * (1 + self.alpha**2) * g2 * self._score(x, t)

    def _score(self, x, t):
        if np.ndim(t) == 0 or not isinstance(self.score, BoundScore):
            return np.asarray(self.score(x, t))
        t = np.asarray(t, dtype=np.float64)  # (batch,): along_batch checked it
        out = np.empty(x.shape, dtype=np.float64)
        for u in np.unique(t):
            rows = t == u
            out[rows] = self.score(x[rows], float(u))
        return out

    def diffusion(self, t):
        """alpha g(t)."""
        return self.alpha * self.sde.diffusion(t)

    def __repr__(self):
        return f"ReverseSDE({self.sde!r}, alpha={self.alpha:g})"


class EDM(AffineSDE):
    r"""The parametrization of Karras et al. (2022), "Elucidating the design
    space of diffusion-based generative models" (EDM): time is the noise level.

    .. math:: x_t = x_0 + t\, z, \quad m = 1,\ s(t) = t,\ t \in [0, \sigma_{max}],
              \qquad f = 0,\ g^2 = \frac{d t^2}{dt} = 2t

    (their sigma(t) = t, s(t) = 1). T = sigma_max; sigma(t) = t and
    lambda(t) = -log t invert in closed form.

    The prior is N(0, sigma_max^2 I), as in Karras et al.: the true marginal
    at T is the data plus N(0, sigma_max^2 I), so the prior is right up to
    the data's spread relative to sigma_max (for unit-scale data and the
    default 80, a variance error of about 1/6400 of the prior's).

    Parameters
    ----------
    sigma_min : float > 0
        Where Karras et al.'s sampler stops (their smallest noise level):
        pass ``t_end=edm.sigma_min`` to :func:`diffsde.reverse` to stop
        there; the default t_end = 0 runs to the data.
    sigma_max : float > sigma_min
    """

    def __init__(self, sigma_min=0.002, sigma_max=80.0):
        self.sigma_min = real_scalar(sigma_min, "sigma_min", "positive")
        self.sigma_max = real_scalar(sigma_max, "sigma_max", "positive")
        if not self.sigma_min < self.sigma_max:
            raise ValueError(f"sigma_max must exceed sigma_min; got sigma_min={self.sigma_min!r}, "
                             f"sigma_max={self.sigma_max!r}")
        self.T = self.sigma_max

    def marginal_coefficients(self, t):
        t = np.asarray(self._check_t(t), dtype=np.float64)
        return np.ones_like(t)[()], t.copy()[()]

    def dmean(self, t):
        return np.zeros_like(np.asarray(self._check_t(t), dtype=np.float64))[()]

    def dvar(self, t):
        return 2 * np.asarray(self._check_t(t), dtype=np.float64)[()]

    def drift_coefficient(self, t):
        return self.dmean(t)

    def diffusion(self, t):
        return np.sqrt(self.dvar(t))

    @property
    def default_t_end(self):
        """sigma_min: where Karras et al.'s sampler stops (t = sigma)."""
        return self.sigma_min

    def t_of_sigma(self, sigma):
        """t = sigma."""
        sigma = self._in_sigma_range(sigma)
        return sigma.copy()[()]

    def __repr__(self):
        return f"EDM(sigma_min={self.sigma_min:g}, sigma_max={self.sigma_max:g})"


class RectifiedFlow(AffineSDE):
    r"""The linear interpolant of rectified flow and flow matching (Liu et al.
    2022; Lipman et al. 2022): x_t = (1 - t) x_0 + t z on [0, 1].

    .. math:: m = 1 - t,\ s = t, \qquad f = -\frac{1}{1 - t}, \qquad
              g^2 = 2t + \frac{2t^2}{1 - t} = \frac{2t}{1 - t}

    Its probability-flow ODE is the flow-matching ODE
    :math:`dx/dt = v(x, t) = E[z - x_0 \mid x_t = x]`. At t = 1 the path is
    singular: m = 0, so f, g^2 and sigma = s/m are infinite and the score is
    -x whatever the data. Score-based reverse runs therefore start at
    ``default_t_start = 1 - 1e-3`` unless given ``t_start``: there
    m = 1e-3, so starting from N(0, s^2 I) misplaces the data's part of
    x_t by 1e-3 x_0, while f = -1000 keeps the first steps of a run of
    1000 steps stable (the step times -f is about 1). ``prior_sample`` and
    ``prior_logp`` use N(0, I), the exact law at t = 1.
    """

    #: Where score-based reverse runs start by default (m = 1e-3 there).
    DEFAULT_T_START = 1.0 - 1e-3

    def __init__(self):
        self.T = 1.0

    def marginal_coefficients(self, t):
        t = np.asarray(self._check_t(t), dtype=np.float64)
        return (1.0 - t)[()], t.copy()[()]

    def dmean(self, t):
        return -np.ones_like(np.asarray(self._check_t(t), dtype=np.float64))[()]

    def dvar(self, t):
        return 2 * np.asarray(self._check_t(t), dtype=np.float64)[()]

    def drift_coefficient(self, t):
        t = np.asarray(self._check_t(t), dtype=np.float64)
        with np.errstate(divide="ignore"):
            return (-1.0 / (1.0 - t))[()]

    def diffusion(self, t):
        t = np.asarray(self._check_t(t), dtype=np.float64)
        with np.errstate(divide="ignore"):
            return np.sqrt(2 * t / (1.0 - t))[()]

    def t_of_sigma(self, sigma):
        """sigma = t / (1 - t), so t = sigma / (1 + sigma) (t = 1 at sigma = inf)."""
        sigma = real_array(sigma, "sigma") if not np.all(np.isinf(np.asarray(sigma, dtype=float))) \
            else np.asarray(sigma, dtype=np.float64)
        if np.any(np.isnan(sigma) | (sigma < 0)):
            raise ValueError(f"sigma must lie in [0, inf]; got {float(np.ravel(sigma)[0])!r}")
        with np.errstate(invalid="ignore"):
            t = np.where(np.isinf(sigma), 1.0, sigma / (1.0 + sigma))
        return t[()]

    def t_of_lambda(self, lam):
        """lambda = log((1 - t)/t), so t = 1 / (1 + e^lambda)."""
        lam = real_array(lam, "lam")
        with np.errstate(over="ignore"):
            return (1.0 / (1.0 + np.exp(lam)))[()]

    @property
    def default_t_start(self):
        return self.DEFAULT_T_START

    def __repr__(self):
        return "RectifiedFlow()"
