"""GridView: what a process looks like on the grid of one run.

Every method builds its table from this view, never from the process's
class: the grid times, the marginal x_t = m x_0 + sd z there, the SDE whose
f and g^2 the SDE and ODE methods evaluate, and, where the process has one,
the chain it defines on the grid (log abar_k for a DDPM chain, sigma_k^2
for an SMLD chain). Processes build their own view: ``sde.grid_view(ts)``,
``chain.grid_view()``.
"""
from dataclasses import dataclass

import numpy as np

from .._steptable import StepTable


@dataclass(frozen=True, eq=False)
class GridView:
    """A process on the grid t_0 < ... < t_N of one run.

    Attributes
    ----------
    t : ndarray, shape (N + 1,)
        The grid times, increasing.
    m, sd : ndarray, shape (N + 1,)
        The marginal x_{t_k} = m_k x_0 + sd_k z at each grid time (the
        built-in scores' (m, sd) columns).
    sde : AffineSDE
        The SDE whose f(t) and g(t)^2 the SDE and ODE methods discretize: the
        process itself, or ``chain.as_sde()`` for a chain.
    capabilities : frozenset of str
        What the process offers the methods (``process.capabilities``):
        "affine" (f and g^2 of an SDE), "chain" (a chain on its own grid),
        "ddpm_chain" (``log_abar``), "smld_chain" (``sigma2``).
    log_abar : ndarray or None
        log abar_k of the DDPM chain on the grid ("ddpm_chain").
    sigma2 : ndarray or None
        sigma_k^2 (absolute) of the SMLD chain on the grid ("smld_chain").
    exact : callable
        ``exact()`` returns (a_k, c_k), k = 0..N-1, the exact Gaussian
        transitions x_{k+1} = a_k x_k + c_k z between the grid's marginals.
    chain_steps : callable or None
        ``chain_steps()`` returns (a_i, c_i), i = 1..N, a chain's own steps.
    to_chain : callable or None
        ``to_chain(method)``: the view of the chain the chain methods run on
        (for a VPSDE the DDPM chain with abar_k = m(t_k)^2 on this grid,
        whose own m and sd come from abar_k; ``method`` names the method in
        its errors). None means this view is that chain's already.
    """

    t: np.ndarray
    m: np.ndarray
    sd: np.ndarray
    sde: object
    capabilities: frozenset
    log_abar: object = None
    sigma2: object = None
    exact: object = None
    chain_steps: object = None
    to_chain: object = None

    @property
    def N(self):
        """The number of grid intervals."""
        return len(self.t) - 1

    def chain_view(self, method):
        """The view the chain methods (``ancestral``, ...) run on."""
        return self if self.to_chain is None else self.to_chain(method)

    def run_order(self):
        """k = N, ..., 1: the grid index each reverse step starts from."""
        return np.arange(self.N, 0, -1)

    def affine(self, k, a, b, c):
        """Reverse rows for steps starting at grid indices k (run order):
        score time t_k, noise interval k - 1."""
        return StepTable.affine(a, b, c, t=self.t[k], m=self.m[k], sd=self.sd[k], interval=k - 1)

    def ddpm_betas(self, k):
        """beta_k = 1 - abar_k / abar_{k-1}, without cancellation."""
        return -np.expm1(self.log_abar[k] - self.log_abar[k - 1])


def marginal_columns(m, sd):
    """(m, sd) as float64 arrays of one shape (m may be a broadcast scalar)."""
    return np.broadcast_to(m, sd.shape).astype(np.float64), sd


def ddpm_chain_view(process, grid, method):
    """The DDPM chain on the run's grid whose marginals are the VP SDE's:
    beta_k = 1 - exp(-(B(t_k) - B(t_{k-1}))), abar_k = abar_0 prod_{j<=k} (1 - beta_j)
    with abar_0 = e^{-B(t_0)}, computed as DDPM does, so on the grid
    t_i = i T / N this is ``DDPM.from_sde(process, N, rule="exact")``."""
    big_b = process.integrated_beta(grid)
    step_b = np.diff(big_b)
    betas = -np.expm1(-step_b)
    bad = np.flatnonzero(betas >= 1)
    if bad.size:
        k = int(bad[-1]) + 1  # the first step in run order (the latest grid index)
        n = len(grid) - 1
        worst = float(step_b.max())
        suggest = int(np.ceil(n * worst / 30.0))
        raise ValueError(
            f"method={method!r} on {process!r} runs on the DDPM chain with abar_k = exp(-B(t_k)) on the "
            f"run's grid, and its beta_k = 1 - exp(-(B(t_k) - B(t_(k-1)))) >= 1 (to rounding) at step "
            f"k = {k} (t = {float(grid[k]):g} -> {float(grid[k - 1]):g}, where beta integrates to "
            f"{float(step_b[k - 1]):.4g}), so the chain is not a valid DDPM"
            f"{' (the step divides by sqrt(1 - beta_k) = 0)' if method == 'ancestral' else ''}. "
            f"Use more steps (beta should integrate to well below 36 over every step: about "
            f"steps >= {suggest} here) or method='em' or 'ode_heun'")
    log_abar = -big_b[0] + np.r_[0.0, np.cumsum(np.log1p(-betas))]
    return GridView(grid, np.exp(0.5 * log_abar), np.sqrt(-np.expm1(log_abar)), process,
                    capabilities=frozenset({"affine", "ddpm_chain"}), log_abar=log_abar,
                    exact=lambda: process.transition(grid[:-1], grid[1:]))
