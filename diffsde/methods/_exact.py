r"""Exact transitions between a process's Gaussian marginals."""
from .._steptable import StepTable
from ._registry import Method


def forward_exact(view):
    r"""Exact transitions of the process's Gaussian marginals on the grid:

    .. math:: x_{k+1} = \frac{m_{k+1}}{m_k} x_k
              + \sqrt{s_{k+1}^2 - (m_{k+1}/m_k)^2 s_k^2}\; z_k

    (for DDPM and SMLD this is the chain's own step).
    """
    a, c = view.exact()
    return StepTable.affine(a, 0.0, c, t=view.t[:-1])


FORWARD = Method(
    "exact", "forward", forward_exact, requires=("affine",), kind="exact", deterministic=False, nfe_per_step=0,
    summary="the exact Gaussian transition between the marginals at t_k and t_{k+1}",
    paper="the Gaussian marginals x_t = m x_0 + s z", strong_order=None, weak_order=None)
