r"""Each simulation method as a per-step table for the C driver.

One function per method, vectorized over steps, its docstring quoting the
equation it implements. Grids follow docs/conventions.md: forward step k goes
from t_k to t_{k+1} and uses noise interval k; chain step i (x_{i-1} -> x_i)
uses interval i - 1, like forward Euler-Maruyama step k = i - 1, so a chain
and its SDE limit consume the same draws.
"""
from dataclasses import dataclass

import numpy as np

from ._steptable import StepTable, check_rows_fit


def forward_em(sde, grid):
    r"""Forward Euler-Maruyama (derivations 000-003; Kloeden & Platen 1992):

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

    DDPM (derivation 002; Ho et al. 2020):
    :math:`x_i = \sqrt{1 - \beta_i}\, x_{i-1} + \sqrt{\beta_i}\, z`;
    SMLD (derivation 000; Song & Ermon 2019):
    :math:`x_i = x_{i-1} + \sqrt{\sigma_i^2 - \sigma_{i-1}^2}\, z`.
    """
    a, c = chain.step_coefficients()
    return StepTable.affine(a, 0.0, c, t=chain.t[:-1])


def forward_chain_exact(chain):
    r"""Exact transitions between the chain's marginals,
    :math:`a_i = m_i/m_{i-1},\ c_i = \sqrt{s_i^2 - a_i^2 s_{i-1}^2}`;
    for DDPM and SMLD this is the chain's own step."""
    a, c = chain.transition()
    return StepTable.affine(a, 0.0, c, t=chain.t[:-1])


# ---- reverse ------------------------------------------------------------------
#
# A reverse run goes down the grid t_0 < ... < t_N from t_N to t_0. Run-order
# step j takes t_k to t_{k-1} with k = N - j, evaluates f, g and the score at
# t_k and uses noise interval k - 1 (docs/conventions.md); for a chain, k is the
# chain index i.


@dataclass(frozen=True)
class ReverseGrid:
    """What the reverse methods need of a process on the run's grid.

    t : grid times t_0 < ... < t_N
    m, s : the marginal x_t = m x_0 + s z at each grid time (the built-in
        scores' (m, s) columns): ``sde.marginal_coefficients(t_k)`` for an SDE,
        ``chain.marginal_coefficients(k)`` for a chain
    sde : the SDE Euler-Maruyama and Heun discretize (``chain.as_sde()``
        for a chain)
    log_abar : log abar_k, for DDPM-type methods (VP: 2 log m(t_k))
    sigma2 : sigma_k^2 (absolute), for SMLD-type methods (VE: sigma(t_k)^2)
    """

    t: np.ndarray
    m: np.ndarray
    s: np.ndarray
    sde: object
    log_abar: object = None
    sigma2: object = None

    @property
    def N(self):
        return len(self.t) - 1

    def run_order(self):
        """k = N, ..., 1: the grid index each run-order step starts from."""
        return np.arange(self.N, 0, -1)

    def affine(self, k, a, b, c):
        """Rows for steps starting at grid indices k (run order)."""
        return StepTable.affine(a, b, c, t=self.t[k], m=self.m[k], sd=self.s[k], interval=k - 1)

    def ddpm_betas(self, k):
        """beta_k = 1 - abar_k / abar_{k-1}, without cancellation."""
        return -np.expm1(self.log_abar[k] - self.log_abar[k - 1])


def reverse_em(grid, alpha):
    r"""Reverse Euler-Maruyama for the alpha-family (derivation 004):

    .. math:: x_{k-1} = x_k - h\left[f(t_k) x_k - \frac{1 + \alpha^2}{2} g(t_k)^2 s(x_k, t_k)\right]
              + \alpha\, g(t_k) \sqrt{h}\, z_{k-1}

    alpha = 1: Anderson's reverse SDE (Anderson 1982; derivations 000-003); alpha = 0: the
    probability-flow ODE, deterministic.
    """
    k = grid.run_order()
    h = grid.t[k] - grid.t[k - 1]
    f = grid.sde.drift_coefficient(grid.t[k])
    g2 = grid.sde.diffusion(grid.t[k]) ** 2
    return grid.affine(k, 1 - h * f, 0.5 * (1 + alpha**2) * g2 * h, alpha * np.sqrt(g2 * h))


def reverse_ode_heun(grid):
    r"""Heun's method on the probability-flow ODE dx/dt = f(t) x - g(t)^2 s / 2,
    stepping down the grid; the last step (to t_0) is Euler, so the score is
    never evaluated at t_0 (as in Karras et al. 2022):

    .. math::

        \tilde x = x_k - h D(x_k, t_k), \quad
        x_{k-1} = x_k - \tfrac{h}{2}\left[D(x_k, t_k) + D(\tilde x, t_{k-1})\right]
    """
    k = grid.run_order()
    h = grid.t[k] - grid.t[k - 1]
    sde = grid.sde

    def coefficients(t):
        return 1 - h * sde.drift_coefficient(t), 0.5 * h * sde.diffusion(t) ** 2

    a, b = coefficients(grid.t[k])
    a_end, b_end = coefficients(grid.t[k - 1])
    if grid.N == 1:
        return grid.affine(k, a, b, 0.0)
    heun = StepTable.heun(a[:-1], b[:-1], a_end[:-1], b_end[:-1], t=grid.t[k[:-1]],
                          t_end=grid.t[k[:-1] - 1], m=grid.m[k[:-1]], sd=grid.s[k[:-1]],
                          m_end=grid.m[k[:-1] - 1], sd_end=grid.s[k[:-1] - 1])
    last = grid.affine(k[-1:], a[-1:], b[-1:], 0.0)
    return StepTable.concat(heun, last)


def reverse_diffusion(grid):
    r"""The reverse-diffusion predictor (Song et al. 2021): Anderson's SDE
    discretized on the chain's own increments.

    SMLD (derivation 000, step 3):
    :math:`x_{i-1} = x_i + (\sigma_i^2 - \sigma_{i-1}^2) s + \sqrt{\sigma_i^2 - \sigma_{i-1}^2}\, z`;
    DDPM: :math:`x_{i-1} = (2 - \sqrt{1 - \beta_i}) x_i + \beta_i s + \sqrt{\beta_i}\, z`.
    """
    k = grid.run_order()
    if grid.sigma2 is not None:
        d = grid.sigma2[k] - grid.sigma2[k - 1]
        return grid.affine(k, 1.0, d, np.sqrt(d))
    beta = grid.ddpm_betas(k)
    return grid.affine(k, 2 - np.sqrt(1 - beta), beta, np.sqrt(beta))


def ancestral(grid, variance="beta", last_step_noise=False):
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
    k = grid.run_order()
    if grid.sigma2 is not None:
        d = grid.sigma2[k] - grid.sigma2[k - 1]
        a, b = 1.0, d
        v = grid.s[k - 1] ** 2 * d / grid.s[k] ** 2
    else:
        beta = grid.ddpm_betas(k)
        root = np.sqrt(1 - beta)
        a, b = 1 / root, beta / root
        if variance == "beta":
            v = beta
        else:
            v = beta * -np.expm1(grid.log_abar[k - 1]) / -np.expm1(grid.log_abar[k])
    if not last_step_noise:
        v = np.where(k == 1, 0.0, v)  # k == 1: the step to t_0, last in run order
    return grid.affine(k, a, b, np.sqrt(v))


def ddim(grid, eta=0.0):
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
    """
    k = grid.run_order()
    one_minus_now = -np.expm1(grid.log_abar[k])
    one_minus_prev = -np.expm1(grid.log_abar[k - 1])
    sigma2 = eta**2 * (one_minus_prev / one_minus_now) * grid.ddpm_betas(k)
    a = np.exp(0.5 * (grid.log_abar[k - 1] - grid.log_abar[k]))
    b = a * one_minus_now - np.sqrt(np.maximum(one_minus_prev - sigma2, 0.0) * one_minus_now)
    return grid.affine(k, a, b, np.sqrt(sigma2))


def langevin_corrector(grid, snr, n_steps, at_start=True):
    r"""Langevin corrector sub-steps at every grid time but t_0 (no score
    there): at t_N, ..., t_1 with ``at_start=True`` (score_sde's PC sampler:
    a corrector before each predictor step, at that step's time, so also at
    t = T), at t_{N-1}, ..., t_1 with ``at_start=False`` (after each
    predictor step but the last). Run one table per sub-step before the
    predictor table (``at_start``) or after it (Song et al. 2021's
    predictor-corrector sampling).

    .. math:: x \leftarrow x + \epsilon_b s + \sqrt{2 \epsilon_b}\, z, \quad
              \epsilon_b = 2 r \left(\mathrm{snr}\, |z_b| / |s_b|\right)^2

    per batch row b; r = 1 - beta_k = abar_k / abar_{k-1} at the corrector's
    grid index k for DDPM-type processes (as in score_sde), 1 otherwise.
    Sub-step m draws from stream ``STREAM_CORRECTOR + m``.

    Returns a list holding one StepTable, for ``StepTable.interleave``: its
    step j has the rows of sub-steps 0, ..., n_steps - 1. It is built in one
    pass over its rows, after checking that they fit in memory (MemoryError
    stating the bytes otherwise).
    """
    # the corrector at t_k precedes the predictor step from t_k (at_start), or
    # follows the step landing on t_k (k = landing index of every step but the last)
    k = grid.run_order() if at_start else grid.run_order()[:-1] - 1
    check_rows_fit(k.size * n_steps, f"a Langevin corrector of {n_steps:,} sub-steps at each of "
                                     f"{k.size:,} grid times", "use fewer corrector sub-steps or fewer steps")
    if grid.log_abar is not None:
        r = np.exp(grid.log_abar[k] - grid.log_abar[k - 1])
    else:
        r = np.ones(k.size)
    # row (j, sub) = j * n_steps + sub: step j's sub-steps in order
    n_rows = k.size * n_steps
    sub = np.arange(n_rows, dtype=np.int64) % n_steps if n_steps > 1 else 0
    return [StepTable.langevin(np.repeat(r, n_steps), snr, t=np.repeat(grid.t[k], n_steps),
                               m=np.repeat(grid.m[k], n_steps), sd=np.repeat(grid.s[k], n_steps),
                               interval=np.repeat(k, n_steps), sub_step=sub,
                               step=np.repeat(np.arange(k.size), n_steps))]
