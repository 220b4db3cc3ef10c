"""ds.forward (and, later, ds.reverse): processes in, Trajectory out."""
import numbers
from dataclasses import dataclass

import numpy as np

from . import methods
from ._engine import as_state, execute, prepare
from ._rng import key_from_rng
from .brownian import BrownianPath
from .chains import Chain
from .sde import SDE, SubVPSDE

DEFAULT_SDE_STEPS = 1000


@dataclass(frozen=True)
class Trajectory:
    """The result of a simulation.

    Attributes
    ----------
    x : ndarray
        The final state.
    xs : ndarray, shape (n_saved, *x.shape)
        Saved states, in run order.
    ts : ndarray, shape (n_saved,)
        The time of each saved state (chain grid times t_i = i T / N for chains).
    nfe : int
        Score evaluations of the whole batch (0 forward).
    """

    x: np.ndarray
    xs: np.ndarray
    ts: np.ndarray
    nfe: int

    def __repr__(self):
        return (f"Trajectory(x.shape={self.x.shape}, {len(self.ts)} saved states at "
                f"t = {self.ts[0]:g} .. {self.ts[-1]:g}, nfe={self.nfe})")


FORWARD_METHODS = {
    "sde": ("em", "exact"),
    "chain": ("chain", "exact", "em"),
}


def _process_kind(process):
    if isinstance(process, SDE):
        return "sde"
    if isinstance(process, Chain):
        return "chain"
    raise TypeError(f"process must be a VPSDE, VESDE, SubVPSDE, DDPM or SMLD; got {type(process).__name__}")


def _method(process, method, table):
    kind = _process_kind(process)
    valid = table[kind]
    if method is None:
        return valid[0]
    if method not in valid:
        raise ValueError(f"method {method!r} is not available for {type(process).__name__}; "
                         f"valid: {', '.join(valid)}")
    return method


def _steps(steps, default):
    if steps is None:
        return default
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral):
        raise TypeError(f"steps must be an int >= 1; got {steps!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1; got {steps}")
    return int(steps)


def _forward_grid(process, steps, t0, t1, ts):
    """The run's grid of times (increasing), DESIGN section 3."""
    if isinstance(process, Chain):
        if ts is not None or t1 is not None or t0 != 0.0:
            raise ValueError("a chain runs on its own grid t_i = i T / N: t0, t1 and ts do not apply "
                             "(use chain.respace(M) for fewer steps)")
        if steps is not None and _steps(steps, None) != process.N:
            raise ValueError(f"steps must be None or N = {process.N} for this chain; for fewer "
                             f"steps use chain.respace({steps})")
        return process.t
    T = process.T
    if ts is not None:
        if steps is not None or t1 is not None or t0 != 0.0:
            raise ValueError("pass either ts or steps/t0/t1, not both")
        grid = np.asarray(ts, dtype=np.float64)
        if grid.ndim != 1 or grid.size < 2:
            raise ValueError(f"ts must be a 1-D grid of at least 2 times; got shape {grid.shape}")
        if not np.all(np.isfinite(grid)) or np.any(np.diff(grid) <= 0):
            raise ValueError("ts must increase strictly for a forward run")
        if grid[0] < 0 or grid[-1] > T:
            raise ValueError(f"ts must lie in [0, T] = [0, {T:g}]; got [{grid[0]:g}, {grid[-1]:g}]")
        return grid
    n = _steps(steps, DEFAULT_SDE_STEPS)
    t0 = float(t0)
    t1 = T if t1 is None else float(t1)
    if not (np.isfinite(t0) and np.isfinite(t1)) or not 0 <= t0 < t1 <= T:
        raise ValueError(f"need 0 <= t0 < t1 <= T = {T:g}; got t0={t0!r}, t1={t1!r}")
    return t0 + (t1 - t0) * (np.arange(n + 1) / n)


def save_steps(grid, save_every=None, save_at=None):
    """Step counts to save: DESIGN section 4 rules, on a grid of n + 1 times
    in run order."""
    n = len(grid) - 1
    if save_every is not None and save_at is not None:
        raise ValueError("pass save_every or save_at, not both")
    if save_every is not None:
        if isinstance(save_every, bool) or not isinstance(save_every, numbers.Integral) or save_every < 1:
            raise ValueError(f"save_every must be an int >= 1; got {save_every!r}")
        return np.unique(np.r_[np.arange(0, n + 1, int(save_every)), n])
    if save_at is None:
        return np.array([0, n])
    at = np.atleast_1d(np.asarray(save_at))
    if at.dtype.kind in "iu":
        if np.any((at < 0) | (at > n)):
            raise ValueError(f"save_at grid indices must lie in [0, {n}]; got {save_at!r}")
        return np.unique(at)
    if at.dtype.kind != "f":
        raise TypeError(f"save_at must be grid indices (ints) or grid times (floats); got {at.dtype}")
    span = abs(grid[-1] - grid[0])
    idx = np.abs(grid[None, :] - at[:, None]).argmin(axis=1)
    off = np.abs(grid[idx] - at) > 1e-9 * max(span, 1.0)
    if np.any(off):
        raise ValueError(f"save_at time {float(at[off][0])!r} is not on the run's grid; pass grid times or indices")
    return np.unique(idx)


def _noise(noise, grid, shape):
    if not isinstance(noise, BrownianPath):
        return noise
    if noise.shape != shape:
        raise ValueError(f"the BrownianPath has shape {noise.shape}; x has shape {shape}")
    h = np.diff(grid)
    if not np.allclose(h, h[0], rtol=1e-9, atol=0):
        raise ValueError("a BrownianPath drives uniform grids only (steps = 2**l equal steps)")
    return noise.normals(len(h))


def forward(process, x0, steps=None, *, method=None, t0=0.0, t1=None, ts=None, rng=None,
            noise=None, save_every=None, save_at=None, dtype=None, nonfinite="raise", out=None,
            progress=False):
    r"""Simulate a diffusion process forward in time from ``x0``.

    ==============  ====================================================
    process         methods (default first)
    ==============  ====================================================
    VP, VE, sub-VP  ``em`` (Euler-Maruyama), ``exact``
    DDPM, SMLD      ``chain``, ``exact``, ``em`` (on ``as_sde()``, same grid)
    ==============  ====================================================

    ``em``: :math:`x_{k+1} = x_k + f(x_k, t_k) h + g(t_k)\sqrt{h}\, z_k`;
    ``exact``: :math:`x_{k+1} = (m_{k+1}/m_k) x_k + \sqrt{s_{k+1}^2 - (m_{k+1}/m_k)^2 s_k^2}\, z_k`;
    ``chain``: DDPM :math:`\sqrt{1-\beta_i} x_{i-1} + \sqrt{\beta_i} z`, SMLD
    :math:`x_{i-1} + \sqrt{\sigma_i^2 - \sigma_{i-1}^2} z` (see :mod:`diffsde.methods`).

    Parameters
    ----------
    process : VPSDE, VESDE, SubVPSDE, DDPM or SMLD
    x0 : array_like, shape (batch, *event)
        The state at ``t0`` (never modified).
    steps : int, optional
        SDEs: number of equal steps on [t0, t1] (default 1000). Chains: None
        or N (for fewer steps use ``chain.respace(M)``).
    method : str, optional
    t0, t1 : float
        SDEs only: the time span, 0 <= t0 < t1 <= T (default [0, T]).
    ts : array, optional
        SDEs only: an increasing grid of times, instead of steps/t0/t1.
    rng : SPEC 7 seed
        One key drives the whole run; step k uses noise interval k, so
        ``forward(ddpm, x0, rng=7)`` and ``forward(vp, x0, steps=N, rng=7)``
        share their draws interval by interval.
    noise : array of shape (steps, *x0.shape) or BrownianPath, optional
        Standard normals z_k to use instead of generated ones.
    save_every : int, optional
        Keep the states after 0, s, 2s, ... steps and the last.
    save_at : ints (grid indices) or floats (grid times), optional
        Default (neither): the first and last states.
    dtype, nonfinite, out, progress
        As for :func:`diffsde.run_steps`.

    Returns
    -------
    Trajectory
    """
    method = _method(process, method, FORWARD_METHODS)
    x0, _ = as_state(x0, dtype, "x0")
    grid = _forward_grid(process, steps, t0, t1, ts)
    if isinstance(process, Chain):
        table = {"chain": lambda: methods.forward_chain(process),
                 "exact": lambda: methods.forward_chain_exact(process),
                 "em": lambda: methods.forward_em(process.as_sde(), grid)}[method]()
    else:
        table = {"em": methods.forward_em, "exact": methods.forward_exact}[method](process, grid)
    saved = save_steps(grid, save_every, save_at)
    plan = prepare(x0, table, noise=_noise(noise, grid, x0.shape), save=saved, dtype=dtype,
                   nonfinite=nonfinite, out=out, progress=progress)
    result = execute(plan, key_from_rng(rng))
    return Trajectory(x=result.x, xs=result.xs, ts=grid[saved], nfe=0)
