r"""Each simulation method as a per-step table for the C driver.

One function per method, vectorized over steps, its docstring quoting the
equation it implements. Grids follow DESIGN section 3: forward step k goes
from t_k to t_{k+1} and uses noise interval k; chain step i (x_{i-1} -> x_i)
uses interval i - 1, like forward Euler-Maruyama step k = i - 1, so a chain
and its SDE limit consume the same draws.
"""
import numpy as np

from ._steptable import StepTable


def forward_em(sde, grid):
    r"""Forward Euler-Maruyama (seeds 000-002):

    .. math:: x_{k+1} = x_k + f(t_k) x_k h_k + g(t_k) \sqrt{h_k}\, z_k,
              \quad h_k = t_{k+1} - t_k
    """
    t = grid[:-1]
    h = np.diff(grid)
    return StepTable.affine(1 + sde.drift_coefficient(t) * h, 0.0, sde.diffusion(t) * np.sqrt(h), t=t)


def forward_exact(sde, grid):
    r"""Exact transitions of the SDE's Gaussian marginals:

    .. math:: x_{k+1} = \frac{m_{k+1}}{m_k} x_k
              + \sqrt{s_{k+1}^2 - (m_{k+1}/m_k)^2 s_k^2}\; z_k
    """
    a, c = sde.transition(grid[:-1], grid[1:])
    return StepTable.affine(a, 0.0, c, t=grid[:-1])


def forward_chain(chain):
    r"""The chain's own step i = 1..N, on interval i - 1:

    DDPM (seed 001): :math:`x_i = \sqrt{1 - \beta_i}\, x_{i-1} + \sqrt{\beta_i}\, z`;
    SMLD (seed 000): :math:`x_i = x_{i-1} + \sqrt{\sigma_i^2 - \sigma_{i-1}^2}\, z`.
    """
    a, c = chain.step_coefficients()
    return StepTable.affine(a, 0.0, c, t=chain.t[:-1])


def forward_chain_exact(chain):
    r"""Exact transitions between the chain's marginals,
    :math:`a_i = m_i/m_{i-1},\ c_i = \sqrt{s_i^2 - a_i^2 s_{i-1}^2}`;
    for DDPM and SMLD this is the chain's own step."""
    a, c = chain.transition()
    return StepTable.affine(a, 0.0, c, t=chain.t[:-1])
