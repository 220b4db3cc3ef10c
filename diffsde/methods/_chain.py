r"""The chain methods: a DDPM or SMLD chain's own steps, forward and in reverse.

Grids follow docs/conventions.md: chain step i (x_{i-1} -> x_i) uses noise
interval i - 1, like forward Euler-Maruyama step k = i - 1, so a chain and
its SDE limit consume the same draws. A reverse step from grid index k
evaluates the score at t_k and uses interval k - 1. On a VPSDE or VESDE the
reverse chain methods run on the chain whose marginals are the SDE's on the
run's grid (``view.chain_view``).
"""
import numpy as np

from .._validation import choice, real_scalar, shown
from .._steptable import StepTable
from ._ksamplers import ddim_sigma
from ._registry import Method, Option


def forward_chain(view):
    r"""The chain's own step i = 1..N, on interval i - 1:

    DDPM (derivation 002; Ho et al. 2020):
    :math:`x_i = \sqrt{1 - \beta_i}\, x_{i-1} + \sqrt{\beta_i}\, z`;
    SMLD (derivation 000; Song & Ermon 2019):
    :math:`x_i = x_{i-1} + \sqrt{\sigma_i^2 - \sigma_{i-1}^2}\, z`.
    """
    a, c = view.chain_steps()
    return StepTable.affine(a, 0.0, c, t=view.t[:-1])


def reverse_diffusion(view):
    r"""The reverse-diffusion predictor (Song et al. 2021): Anderson's SDE
    discretized on the chain's own increments.

    SMLD (derivation 000, step 3):
    :math:`x_{i-1} = x_i + (\sigma_i^2 - \sigma_{i-1}^2) s + \sqrt{\sigma_i^2 - \sigma_{i-1}^2}\, z`;
    DDPM: :math:`x_{i-1} = (2 - \sqrt{1 - \beta_i}) x_i + \beta_i s + \sqrt{\beta_i}\, z`.
    """
    k = view.run_order()
    if view.sigma2 is not None:
        d = view.sigma2[k] - view.sigma2[k - 1]
        return view.affine(k, 1.0, d, np.sqrt(d))
    beta = view.ddpm_betas(k)
    return view.affine(k, 2 - np.sqrt(1 - beta), beta, np.sqrt(beta))


def ancestral(view, variance="beta", last_step_noise=False):
    r"""Ancestral sampling (Ho et al. 2020; derivation 002): the chain's Gaussian
    posterior q(x_{i-1} | x_i, x_0) with x_0 replaced by its Tweedie estimate.

    DDPM: :math:`x_{i-1} = (x_i + \beta_i s)/\sqrt{1 - \beta_i} + \sqrt{v_i}\, z` with
    :math:`v_i = \beta_i` (``"beta"``) or
    :math:`\tilde\beta_i = \beta_i (1 - \bar\alpha_{i-1})/(1 - \bar\alpha_i)` (``"posterior"``)
    (Ho et al. 2020, eq. 7 and Algorithm 2);
    SMLD: :math:`x_{i-1} = x_i + (\sigma_i^2 - \sigma_{i-1}^2) s + \sqrt{v_i}\, z` with the
    posterior variance of the chain, whose marginal variances are
    :math:`s_i^2 = \sigma_i^2 - \sigma_0^2`:

    .. math:: v_i = \frac{s_{i-1}^2 (s_i^2 - s_{i-1}^2)}{s_i^2}
              = \frac{(\sigma_{i-1}^2 - \sigma_0^2)(\sigma_i^2 - \sigma_{i-1}^2)}{\sigma_i^2 - \sigma_0^2}.

    With sigma_0 = 0 this is score_sde's
    :math:`\sigma_{i-1}^2 (\sigma_i^2 - \sigma_{i-1}^2)/\sigma_i^2`; with sigma_0 > 0
    (``SMLD.from_sde``: sigma_0 = sigma_min) using the absolute sigma_{i-1}^2
    would add noise of std ~sigma_0 at the last step, where the chain's
    x_0 has none. For point-mass data (exact x_0 estimate) every step then
    samples the exact posterior.

    ``last_step_noise=False`` (default) drops the noise of the last step
    (i = 1, to t_0), as Ho et al.'s Algorithm 2 (z = 0 at t = 1) and
    diffusers' DDPMScheduler (noise only for t > 0, both variance types) do;
    ``True`` keeps :math:`\sqrt{v_1} z` (for DDPM ``"beta"``: sqrt(beta_1) z).
    """
    k = view.run_order()
    if view.sigma2 is not None:
        d = view.sigma2[k] - view.sigma2[k - 1]
        a, b = 1.0, d
        v = view.sd[k - 1] ** 2 * d / view.sd[k] ** 2
    else:
        beta = view.ddpm_betas(k)
        root = np.sqrt(1 - beta)
        a, b = 1 / root, beta / root
        if variance == "beta":
            v = beta
        else:
            v = beta * -np.expm1(view.log_abar[k - 1]) / -np.expm1(view.log_abar[k])
    if not last_step_noise:
        v = np.where(k == 1, 0.0, v)  # k == 1: the step to t_0, last in run order
    return view.affine(k, a, b, np.sqrt(v))


def ddim(view, eta=0.0):
    r"""DDIM (Song, Meng & Ermon 2021) with the score in place of eps:

    .. math::

        \hat\varepsilon = -\sqrt{1 - \bar\alpha_i}\, s, \quad
        \hat x_0 = \frac{x_i - \sqrt{1 - \bar\alpha_i}\,\hat\varepsilon}{\sqrt{\bar\alpha_i}}, \quad
        x_{i-1} = \sqrt{\bar\alpha_{i-1}}\,\hat x_0 + \sqrt{1 - \bar\alpha_{i-1} - \sigma_\eta^2}\,\hat\varepsilon
                  + \sigma_\eta z,

    :math:`\sigma_\eta = \eta \sqrt{(1 - \bar\alpha_{i-1})/(1 - \bar\alpha_i)}
    \sqrt{1 - \bar\alpha_i/\bar\alpha_{i-1}}`; as an affine step
    :math:`a = \sqrt{\bar\alpha_{i-1}/\bar\alpha_i}`,
    :math:`b = a (1 - \bar\alpha_i) - \sqrt{(1 - \bar\alpha_{i-1} - \sigma_\eta^2)(1 - \bar\alpha_i)}`,
    :math:`c = \sigma_\eta`. eta = 0 is deterministic; eta = 1 has the
    posterior variance of ancestral sampling.

    On a process without a DDPM chain (sub-VP, VE, EDM, RectifiedFlow, a
    user's AffineSDE, an SMLD chain) it is the same map written in
    sigma-space, :func:`._ksamplers.ddim_sigma`; on VP and DDPM the chain's
    own form above is kept, which agrees with it to rounding.
    """
    if view.log_abar is None:
        return ddim_sigma(view, eta)
    k = view.run_order()
    one_minus_now = -np.expm1(view.log_abar[k])
    one_minus_prev = -np.expm1(view.log_abar[k - 1])
    sigma2 = eta**2 * (one_minus_prev / one_minus_now) * view.ddpm_betas(k)
    a = np.exp(0.5 * (view.log_abar[k - 1] - view.log_abar[k]))
    b = a * one_minus_now - np.sqrt(np.maximum(one_minus_prev - sigma2, 0.0) * one_minus_now)
    return view.affine(k, a, b, np.sqrt(sigma2))


def _variance(value):
    return choice(value, "variance", ("beta", "posterior"))


def _flag(name):
    def check(value):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False; got {shown(value)}")
        return bool(value)
    return check


VARIANCE = Option(
    "variance", "beta", _variance, "DDPM ancestral: v_i = beta_i ('beta') or the posterior beta~_i ('posterior')",
    unset="beta", requires=("ddpm_chain",), scope=" on DDPM or VPSDE",
    detail=(("smld_chain", " (SMLD/VE ancestral sampling always uses the posterior variance "
                           "sigma_{i-1}^2 (sigma_i^2 - sigma_{i-1}^2) / sigma_i^2, with sigma_i^2 - sigma_0^2 "
                           "in place of sigma_i^2)"),))
LAST_STEP_NOISE = Option("last_step_noise", False, _flag("last_step_noise"),
                         "keep the noise of the last step (to t_end); default False, Ho et al.'s Algorithm 2",
                         unset=False)
ETA = Option("eta", 0.0, lambda v: real_scalar(v, "eta", "non_negative"),
             "DDIM's stochasticity: 0 deterministic (default), 1 the posterior variance of ancestral sampling")

FORWARD = Method(
    "chain", "forward", forward_chain, requires=("chain",), kind="chain", deterministic=False, nfe_per_step=0,
    summary=("the chain's own step: DDPM sqrt(1 - beta_i) x + sqrt(beta_i) z; "
             "SMLD x + sqrt(sigma_i^2 - sigma_{i-1}^2) z"),
    paper="Ho et al. 2020; Song & Ermon 2019; derivations 000 and 002", default_on="chain")

REVERSE_DIFFUSION = Method(
    "reverse_diffusion", "reverse", reverse_diffusion, requires=("ddpm_chain", "smld_chain"), kind="chain",
    deterministic=False, nfe_per_step=1,
    summary="the reverse-diffusion predictor: Anderson's SDE on the chain's own increments",
    paper="Song et al. 2021; derivation 000, step 3", strong_order=1.0, weak_order=1.0)

ANCESTRAL = Method(
    "ancestral", "reverse", ancestral, requires=("ddpm_chain", "smld_chain"), kind="chain", deterministic=False,
    nfe_per_step=1, summary="ancestral sampling: the chain's posterior with the Tweedie estimate of x_0",
    paper="Ho et al. 2020; derivation 002, step 7", options=(VARIANCE, LAST_STEP_NOISE), weak_order=1.0,
    default_on="chain")

DDIM = Method(
    "ddim", "reverse", ddim, requires=("ddpm_chain", "affine"), kind="chain", deterministic=True, nfe_per_step=1,
    summary="DDIM with eps = -sqrt(1 - abar_i) s (on any process: Euler in sigma = s/m); eta = 0 deterministic", paper="Song, Meng & Ermon 2021",
    options=(ETA,), order=1.0)
