r"""Euler-Maruyama, forward and for the reverse alpha-family (derivation 004)."""
import numpy as np

from .._validation import real_scalar
from .._steptable import StepTable
from ._registry import Method, Option


def forward_em(view):
    r"""Forward Euler-Maruyama (derivations 000-003; Kloeden & Platen 1992):

    .. math:: x_{k+1} = x_k + f(t_k) x_k h_k + g(t_k) \sqrt{h_k}\, z_k,
              \quad h_k = t_{k+1} - t_k
    """
    t = view.t[:-1]
    h = np.diff(view.t)
    return StepTable.affine(1 + view.sde.drift_coefficient(t) * h, 0.0, view.sde.diffusion(t) * np.sqrt(h), t=t)


def reverse_em(view, alpha=1.0):
    r"""Reverse Euler-Maruyama for the alpha-family (derivation 004):

    .. math:: x_{k-1} = x_k - h\left[f(t_k) x_k - \frac{1 + \alpha^2}{2} g(t_k)^2 s(x_k, t_k)\right]
              + \alpha\, g(t_k) \sqrt{h}\, z_{k-1}

    alpha = 1: Anderson's reverse SDE (Anderson 1982; derivations 000-003); alpha = 0: the
    probability-flow ODE, deterministic.
    """
    k = view.run_order()
    h = view.t[k] - view.t[k - 1]
    f = view.sde.drift_coefficient(view.t[k])
    g2 = view.sde.diffusion(view.t[k]) ** 2
    return view.affine(k, 1 - h * f, 0.5 * (1 + alpha**2) * g2 * h, alpha * np.sqrt(g2 * h))


ALPHA = Option("alpha", 1.0, lambda v: real_scalar(v, "alpha", "non_negative"),
               "alpha >= 0 of the alpha-family: 1 Anderson's reverse SDE, 0 the probability-flow ODE",
               unset=1.0, note=" (the alpha-family)")

FORWARD = Method(
    "em", "forward", forward_em, requires=("affine",), kind="sde", deterministic=False, nfe_per_step=0,
    summary="Euler-Maruyama: x + f(t_k) x h + g(t_k) sqrt(h) z (a chain: on chain.as_sde(), same grid)",
    paper="Kloeden & Platen 1992; derivations 000-003", strong_order=1.0, weak_order=1.0, default_on="sde")

REVERSE = Method(
    "em", "reverse", reverse_em, requires=("affine",), kind="sde", deterministic=False, nfe_per_step=1,
    summary="reverse Euler-Maruyama of the alpha-family: x - h [f x - (1 + alpha^2)/2 g^2 s] + alpha g sqrt(h) z",
    paper="Anderson 1982; Song et al. 2021; derivation 004", options=(ALPHA,), strong_order=1.0, weak_order=1.0,
    default_on="sde")
