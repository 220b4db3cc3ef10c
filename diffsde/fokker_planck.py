r"""A 1-D Fokker-Planck solver for the forward SDEs and the reverse
alpha-family (derivation 004), to compare particle histograms with densities.

The density obeys :math:`\partial_t p = -\partial_x [b\, p] + D\, \partial_x^2 p`
with, forward, b = f(t) x and D = g(t)^2 / 2, and for the reverse
alpha-family in reverse time tau = T - t,
b = -f(t) x + (1 + alpha^2)/2 g(t)^2 s(x, t) and D = alpha^2 g(t)^2 / 2.

Finite volumes on a uniform grid of cells, Scharfetter-Gummel fluxes through
the cell faces,

.. math:: F_{i+1/2} = \frac{D}{\Delta x}\left[B(-P)\, p_i - B(P)\, p_{i+1}\right],
          \quad P = \frac{b_{i+1/2} \Delta x}{D}, \quad B(z) = \frac{z}{e^z - 1}

(upwind when D = 0, the probability-flow ODE), zero flux through the two
outer faces, and backward Euler in time. The matrix of each step is an
M-matrix whose columns sum to one, so mass is conserved to rounding and a
non-negative density stays non-negative. Requires SciPy (``solve_banded``),
imported at the first solve: ``pip install "diffsde[fokker-planck]"``.
"""
from dataclasses import dataclass

import numpy as np

from ._optional import require
from ._validation import integer, real_scalar
from .sde import SDE


@dataclass(frozen=True)
class FokkerPlanckSolution:
    """Densities on a grid of cells at a sequence of times.

    Attributes
    ----------
    x : cell centres (n_x,)
    ts : times (n_t,), in the direction of the solve
    p : densities (n_t, n_x); each row integrates to the initial mass
    """

    x: np.ndarray
    ts: np.ndarray
    p: np.ndarray

    @property
    def dx(self):
        return float(self.x[1] - self.x[0])

    def mass(self):
        """Total mass at each time."""
        return self.p.sum(axis=1) * self.dx

    def at(self, t):
        """The density at the stored time closest to t."""
        return self.p[int(np.argmin(np.abs(self.ts - t)))]

    def cdf(self, k=-1):
        """The cumulative distribution at stored time index k, on the cell faces."""
        return np.concatenate([[0.0], np.cumsum(self.p[k]) * self.dx])


def _bernoulli(z):
    """B(z) = z / (e^z - 1), with B(0) = 1, stable for every z."""
    z = np.asarray(z, dtype=np.float64)
    small = np.abs(z) < 1e-8
    safe = np.where(small, 1.0, z)
    with np.errstate(over="ignore"):  # expm1 -> inf for z > 709: B -> 0, as it should
        return np.where(small, 1.0 - 0.5 * z, safe / np.expm1(safe))


def _face_coefficients(b, D, dx):
    """(c_plus, c_minus) with F = c_plus p_left - c_minus p_right on each face."""
    if D == 0.0:
        return np.maximum(b, 0.0), np.maximum(-b, 0.0)
    peclet = b * dx / D
    return D / dx * _bernoulli(-peclet), D / dx * _bernoulli(peclet)


def _implicit_step(p, b_faces, D, dt, dx):
    """One backward Euler step of dp/dt = -(F_{i+1/2} - F_{i-1/2}) / dx."""
    solve_banded = require("scipy.linalg", "diffsde.fokker_planck").solve_banded

    c_plus, c_minus = _face_coefficients(b_faces, D, dx)  # interior faces, length n - 1
    n = p.size
    lower = np.zeros(n)  # coefficient of p_{i-1} in row i
    upper = np.zeros(n)  # coefficient of p_{i+1} in row i
    diag = np.zeros(n)
    diag[:-1] -= c_plus / dx
    diag[1:] -= c_minus / dx
    upper[:-1] = c_minus / dx
    lower[1:] = c_plus / dx
    ab = np.zeros((3, n))
    ab[0, 1:] = -dt * upper[:-1]
    ab[1] = 1.0 - dt * diag
    ab[2, :-1] = -dt * lower[1:]
    return solve_banded((1, 1), ab, p)


def _grid(x):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size < 3:
        raise ValueError(f"x must be a 1-D grid of at least 3 cell centres; got shape {x.shape}")
    dx = np.diff(x)
    if np.any(dx <= 0) or not np.allclose(dx, dx[0], rtol=1e-9, atol=0):
        raise ValueError("x must be uniformly spaced and increasing")
    return x, float(dx[0])


def _density(p0, x, name):
    p = np.asarray(p0(x) if callable(p0) else p0, dtype=np.float64)
    if p.shape != x.shape:
        raise ValueError(f"{name} must give one density value per cell ({x.size}); got shape {p.shape}")
    if np.any(~np.isfinite(p)) or np.any(p < 0):
        raise ValueError(f"{name} must be finite and non-negative")
    return p


def _steps(steps):
    return integer(steps, "steps", 1)


def _march(x, dx, p, ts, save_every, coefficients):
    """Backward Euler along the times ts (either direction); coefficients(t)
    gives (drift on the interior faces, D). Keeps every save_every-th density
    and the last."""
    n = len(ts) - 1
    every = integer(save_every, "save_every", 1, none=True) or n
    saved_t, saved_p = [ts[0]], [p]
    for k in range(1, n + 1):
        b, D = coefficients(ts[k])
        p = _implicit_step(p, b, D, abs(ts[k] - ts[k - 1]), dx)
        if k % every == 0 or k == n:
            saved_t.append(ts[k])
            saved_p.append(p)
    return FokkerPlanckSolution(x, np.array(saved_t), np.array(saved_p))


def solve_forward(sde, p0, x, t0=0.0, t1=None, steps=1000, save_every=None):
    """Evolve the density p0 (array on the cells, or a function of x) under
    the forward SDE from t0 to t1 (default T).

    Returns
    -------
    FokkerPlanckSolution with ts increasing.
    """
    if not isinstance(sde, SDE):
        raise TypeError(f"sde must be a VPSDE, VESDE or SubVPSDE; got {type(sde).__name__}")
    x, dx = _grid(x)
    p = _density(p0, x, "p0")
    n = _steps(steps)
    t0 = real_scalar(t0, "t0")
    t1 = sde.T if t1 is None else real_scalar(t1, "t1")
    if not 0 <= t0 < t1 <= sde.T:
        raise ValueError(f"need 0 <= t0 < t1 <= T; got t0={t0!r}, t1={t1!r}")
    faces = 0.5 * (x[:-1] + x[1:])
    ts = t0 + (t1 - t0) * np.arange(n + 1) / n

    def coefficients(t):
        return float(sde.drift_coefficient(t)) * faces, 0.5 * float(sde.diffusion(t)) ** 2

    return _march(x, dx, p, ts, save_every, coefficients)


def solve_reverse(sde, score, p_start, x, alpha=1.0, t_start=None, t_end=0.0, steps=1000, save_every=None):
    r"""Evolve the density p_start at t_start (default T) back to t_end under
    the reverse alpha-family with ``score(x, t)`` (vectorized over x; e.g.
    ``GaussianMixture.score(sde)``):

    in tau = T - t, drift -f x + (1 + alpha^2)/2 g^2 s and diffusion
    alpha^2 g^2 / 2. With the exact score every alpha carries p_T back to p_0.

    Returns
    -------
    FokkerPlanckSolution with ts decreasing.
    """
    if not isinstance(sde, SDE):
        raise TypeError(f"sde must be a VPSDE, VESDE or SubVPSDE; got {type(sde).__name__}")
    alpha = real_scalar(alpha, "alpha", "non_negative")
    x, dx = _grid(x)
    p = _density(p_start, x, "p_start")
    n = _steps(steps)
    t_start = sde.T if t_start is None else real_scalar(t_start, "t_start")
    t_end = real_scalar(t_end, "t_end")
    if not 0 <= t_end < t_start <= sde.T:
        raise ValueError(f"need 0 <= t_end < t_start <= T; got t_start={t_start!r}, t_end={t_end!r}")
    faces = 0.5 * (x[:-1] + x[1:])
    ts = t_start - (t_start - t_end) * np.arange(n + 1) / n

    def coefficients(t):
        g2 = float(sde.diffusion(t)) ** 2
        s = np.asarray(score(faces, t), dtype=np.float64).reshape(faces.shape)
        drift = -float(sde.drift_coefficient(t)) * faces + 0.5 * (1 + alpha**2) * g2 * s
        return drift, 0.5 * alpha**2 * g2

    return _march(x, dx, p, ts, save_every, coefficients)
