r"""Heun's method on the probability-flow ODE."""
from .._steptable import StepTable
from ._registry import Method


def reverse_ode_heun(view):
    r"""Heun's method on the probability-flow ODE dx/dt = f(t) x - g(t)^2 s / 2,
    stepping down the grid; the last step (to t_0) is Euler, so the score is
    never evaluated at t_0 (as in Karras et al. 2022):

    .. math::

        \tilde x = x_k - h D(x_k, t_k), \quad
        x_{k-1} = x_k - \tfrac{h}{2}\left[D(x_k, t_k) + D(\tilde x, t_{k-1})\right]
    """
    k = view.run_order()
    h = view.t[k] - view.t[k - 1]
    sde = view.sde

    def coefficients(t):
        return 1 - h * sde.drift_coefficient(t), 0.5 * h * sde.diffusion(t) ** 2

    a, b = coefficients(view.t[k])
    a_end, b_end = coefficients(view.t[k - 1])
    if view.N == 1:
        return view.affine(k, a, b, 0.0)
    heun = StepTable.heun(a[:-1], b[:-1], a_end[:-1], b_end[:-1], t=view.t[k[:-1]],
                          t_end=view.t[k[:-1] - 1], m=view.m[k[:-1]], sd=view.sd[k[:-1]],
                          m_end=view.m[k[:-1] - 1], sd_end=view.sd[k[:-1] - 1])
    last = view.affine(k[-1:], a[-1:], b[-1:], 0.0)
    return StepTable.concat(heun, last)


REVERSE = Method(
    "ode_heun", "reverse", reverse_ode_heun, requires=("affine",), kind="ode", deterministic=True,
    nfe_per_step=2, summary="Heun (trapezoidal rule) on the probability-flow ODE; the last step is Euler",
    paper="Karras et al. 2022; Song et al. 2021", order=2.0, streams=())
