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
import abc
import math

import numpy as np

from ._checks import along_batch, real_scalar, times
from ._dtypes import working_dtype
from ._rng import STREAM_INITIAL, fill_normal, key_from_rng
from .schedules import CosineBeta, GeometricSigma, LinearBeta, PiecewiseBeta, PiecewiseSigma


class SDE(abc.ABC):
    """Shared behaviour of the linear SDEs; subclasses give the formulas."""

    T: float

    # -- the formulas, vectorized over t ------------------------------------
    @abc.abstractmethod
    def drift_coefficient(self, t):
        """f(t) with drift(x, t) = f(t) x."""

    @abc.abstractmethod
    def diffusion(self, t):
        """g(t)."""

    @abc.abstractmethod
    def marginal(self, t):
        """(m, s): x_t = m x_0 + s z exactly."""

    # -- derived ---------------------------------------------------------------
    def drift(self, x, t):
        r"""f(x, t) = f(t) x; ``t`` a scalar or shape (batch,)."""
        x = np.asarray(x)
        return along_batch(self.drift_coefficient(times(t, self.T)), x) * x

    def transition(self, t, t_next):
        r"""Exact one-step transition x_{t'} = a x_t + c z between grid times.

        .. math:: a = m(t')/m(t), \quad c = \sqrt{s(t')^2 - a^2 s(t)^2}
        """
        m0, s0 = self.marginal(t)
        m1, s1 = self.marginal(t_next)
        a = m1 / m0
        return a, np.sqrt(np.maximum(s1 * s1 - (a * s0) ** 2, 0.0))

    def perturb(self, x0, t, rng=None):
        r"""An exact sample of x_t | x_0: m(t) x_0 + s(t) z, z from stream 1.

        ``t`` is a scalar or has shape (batch,) (one time per row of x0).
        """
        x0 = np.asarray(x0)
        dtype = working_dtype(x0.dtype, None, "x0")
        m, s = self.marginal(times(t, self.T))
        m, s = along_batch(m, x0), along_batch(s, x0)
        z = fill_normal(np.empty(x0.shape, dtype=dtype), key_from_rng(rng), STREAM_INITIAL)
        return (m * x0 + s * z).astype(dtype, copy=False)

    def prior_std(self):
        """s(T): the prior is N(0, s(T)^2 I)."""
        return float(self.marginal(self.T)[1])

    def prior_sample(self, shape, rng=None, dtype=np.float64):
        """Samples of the prior N(0, s(T)^2 I), from stream 1."""
        from ._rng import standard_normal

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

    def marginal(self, t):
        big_b = self.integrated_beta(t)
        return np.exp(-0.5 * big_b), np.sqrt(-np.expm1(-big_b))

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

    def diffusion(self, t):
        big_b = self.integrated_beta(t)
        return np.sqrt(self.beta(t) * -np.expm1(-2 * big_b))

    def marginal(self, t):
        big_b = self.integrated_beta(t)
        return np.exp(-0.5 * big_b), -np.expm1(-big_b)

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

    def marginal(self, t):
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
            raise TypeError(f"sde must be a VPSDE, SubVPSDE or VESDE; got {type(sde).__name__}")
        if not callable(score):
            raise TypeError(f"score must be callable as score(x, t); got {score!r}")
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
        from .scores import BoundScore

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
