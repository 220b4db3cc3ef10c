r"""The sigma-space change of variables every k-diffusion-style sampler uses.

Every process of the protocol is a Gaussian path x_t = m(t) x_0 + s(t) z.
In the variable :math:`\tilde x = x/m` it reads :math:`\tilde x = x_0 + \sigma z`
with the noise level :math:`\sigma = s/m` (Karras et al. 2022, eq. 4 with
s(t) = 1), and the probability-flow ODE becomes

.. math:: \frac{d\tilde x}{d\sigma} = \frac{\tilde x - D(\tilde x, \sigma)}{\sigma},
          \qquad D = \frac{x + s^2 \nabla_x \log p_t(x)}{m}\ \text{at}\ t = t(\sigma),

D the posterior mean of x_0 (Tweedie's formula; Efron 2011). The map is
affine, so a sampler written in (x~, sigma) is still one step table on x:
the state register keeps x in the process's own variables at the time of
the current sigma, and a sampler's update
:math:`\tilde x' = a \tilde x + \sum_j b_j D_j + c z` at sigma' is the row
:math:`x' = m' (a\, x/m + \sum_j b_j D_j + c z)`.

On VE, sigma here is s/m = sqrt(sigma(t)^2 - sigma_min^2), not score_sde's
sigma(t) (which includes the noise sigma_min of the data end). On a DDPM or
SMLD chain the sigmas are those of the chain's own grid,
sigma_i = sqrt(1 - abar_i)/sqrt(abar_i) or sqrt(sigma_i^2 - sigma_0^2),
and a sigma between grid points (a midpoint, a churned level) is a time
interpolated linearly in log sigma between the chain's grid times, as
k-diffusion's ``DiscreteSchedule`` does, with the marginal of the chain's
family there (DDPM m = 1/sqrt(1 + sigma^2), SMLD m = 1). On a chain the samplers step along its own grid (``ts=`` does
not apply; ``chain.respace(M)`` gives fewer steps).
"""
import numpy as np

from .._protocol import chain_marginal_at_sigma
from .._steptable import REG_X, combine_rows, normal_rows, score_rows


class SigmaGrid:
    """A reverse run's grid in sigma-space, in run order (i = 0 first).

    Attributes
    ----------
    n : int
        The number of steps.
    sigma, t, m, sd : ndarray, shape (n + 1,)
        sigma_i = sd_i / m_i and the grid's time and marginal, decreasing
        in time: index i is the state before step i.
    interval : ndarray, shape (n,)
        The noise interval of step i (N - 1 - i, as every reverse method:
        docs/conventions.md).
    """

    def __init__(self, view, method):
        self.view = view
        self.method = method
        self.n = view.N
        self.t = view.t[::-1].copy()
        self.m = np.asarray(view.m, dtype=np.float64)[::-1].copy()
        self.sd = np.asarray(view.sd, dtype=np.float64)[::-1].copy()
        self.sigma = self.sd / self.m
        self.interval = np.arange(self.n - 1, -1, -1)
        self.steps = np.arange(self.n)
        if np.any(np.diff(self.sigma) >= 0):
            i = int(np.flatnonzero(np.diff(self.sigma) >= 0)[0])
            raise ValueError(f"method={method!r} steps down in sigma = s/m, which must decrease strictly "
                             f"along the run; it does not between t = {float(self.t[i])!r} and "
                             f"t = {float(self.t[i + 1])!r}")

    def at(self, sigma, what="an intermediate noise level"):
        """(t, m, sd) where s/m = ``sigma`` (an array): the process's time
        t(sigma) and its marginal there. ValueError, naming the method, when
        sigma lies outside the process's range [sigma(0), sigma(T)]."""
        sigma = np.asarray(sigma, dtype=np.float64)
        if "chain" in self.view.capabilities:
            return self._chain_at(sigma, what)
        sde = self.view.sde
        try:
            t = np.asarray(sde.t_of_sigma(sigma), dtype=np.float64)
        except ValueError as err:
            raise ValueError(f"method={self.method!r} evaluates the score at {what}, sigma = s/m = "
                             f"{float(np.max(sigma)):g}, outside the process: {err}") from None
        m, sd = sde.marginal_coefficients(t)
        return t, np.broadcast_to(np.asarray(m, np.float64), t.shape).copy(), np.asarray(sd, np.float64)


    def _chain_at(self, sigma, what):
        """A chain has marginals on its grid only: between grid points t is
        interpolated linearly in log sigma (k-diffusion's ``DiscreteSchedule``,
        ``sigma_to_t``), and (m, sd) follow from sigma by the chain's family:
        m = 1/sqrt(1 + sigma^2), sd = sigma m (DDPM); m = 1, sd = sigma (SMLD)."""
        view = self.view
        sig_up = view.sd / view.m  # increasing with the grid
        pos = sig_up > 0
        lo, hi = float(sig_up[pos][0]), float(sig_up[-1])
        # a relative 1e-12 of slack: sqrt(sigma_2 sigma_down) is sigma_1 to
        # rounding on the last positive step of an ancestral method
        bad = (sigma < lo * (1 - 1e-12)) | (sigma > hi * (1 + 1e-12))
        if np.any(bad):
            raise ValueError(f"method={self.method!r} evaluates the score at {what}, sigma = s/m = "
                             f"{float(sigma[bad].ravel()[0]):g}, outside the chain's sigmas "
                             f"[{lo:g}, {hi:g}]")
        sigma = np.clip(sigma, lo, hi)
        t = np.interp(np.log(sigma), np.log(sig_up[pos]), view.t[pos])
        return (t,) + chain_marginal_at_sigma(sigma, ddpm=view.log_abar is not None)


def denoise_rows(dst, src, t, m, sd, step):
    r"""Score rows ``reg[dst] = D = (x + sd^2 s(x, t))/m`` in one pass (the
    denoiser of x~ = x/m; Tweedie's formula)."""
    return score_rows(dst, src, 1.0 / m, sd * sd / m, t=t, m=m, sd=sd, step=step)


def eps_rows(dst, src, t, m, sd, step):
    r"""Score rows ``reg[dst] = (x~ - D)/sigma = -sd s(x, t)``: the noise
    prediction, which is also the Karras slope d x~/d sigma."""
    return score_rows(dst, src, 0.0, -sd, t=t, m=m, sd=sd, step=step)


def update_rows(dst, m_out, terms, step):
    r"""Combine rows for :math:`x' = m' (\sum_j a_j \tilde x_j + \sum_j b_j D_j + c z)`.

    ``terms`` is a list of ``(coef, register, m_reg)``: ``m_reg`` the mean
    coefficient of a register that holds a state x (so its x~ is x/m_reg),
    None for one that holds a sigma-space value (a denoised value, a slope,
    a normal). Scalars broadcast over the steps.
    """
    return combine_rows(dst, [(m_out * coef if m_reg is None else m_out * coef / m_reg, reg)
                              for coef, reg, m_reg in terms], step=step)


def noise_rows(dst, interval, stream, step):
    """Normal rows on the given steps (stream and interval per row)."""
    return normal_rows(dst, interval=interval, stream=stream, step=step)


def ancestral_split(sigma, sigma_next, eta):
    r"""(sigma_down, sigma_up) of ancestral steps sigma -> sigma_next (arrays):

    .. math:: \sigma_\uparrow = \min\left(\sigma', \eta\, \frac{\sigma'}{\sigma}\sqrt{\sigma^2 - \sigma'^2}\right),
              \qquad \sigma_\downarrow = \sqrt{\sigma'^2 - \sigma_\uparrow^2};

    at eta = 1 the deterministic step to sigma_down plus fresh noise of std
    sigma_up is the DDPM posterior's (Ho et al. 2020; Song, Meng & Ermon
    2021, eq. 16), k-diffusion's ``get_ancestral_step``.
    """
    sigma = np.asarray(sigma, np.float64)
    sigma_next = np.asarray(sigma_next, np.float64)
    if not eta:
        return sigma_next.copy(), np.zeros_like(sigma_next)
    up = np.minimum(sigma_next, eta * np.sqrt(sigma_next ** 2 * (sigma ** 2 - sigma_next ** 2) / sigma ** 2))
    return np.sqrt(sigma_next ** 2 - up ** 2), up


__all__ = ["REG_X", "SigmaGrid", "ancestral_split", "denoise_rows", "eps_rows", "noise_rows", "update_rows"]
