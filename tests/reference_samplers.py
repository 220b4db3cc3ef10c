r"""NumPy twins of the practitioners' samplers, in sigma-space.

Each twin is written from its paper and from the step structure of the
library that made it popular (k-diffusion's ``sampling.py``, diffusers'
schedulers), so that the step tables of diffsde can be checked against it on
identical denoisers and identical normals, and it can be checked against the
libraries themselves (``tools/compare_samplers.py``).

The variables
-------------
Every process of the protocol is a Gaussian path x_t = m(t) x_0 + s(t) z. In
the variable :math:`\tilde x = x/m` it is :math:`\tilde x = x_0 + \sigma z`
with the noise level :math:`\sigma = s/m`, the form of Karras et al. (2022),
and the probability-flow ODE reads

.. math:: \frac{d\tilde x}{d\sigma} = \frac{\tilde x - D(\tilde x, \sigma)}{\sigma},
          \qquad D(\tilde x, \sigma) = E[x_0 \mid \tilde x]
          = \frac{x + s^2 \nabla_x \log p_t(x)}{m} \text{ at } t = t(\sigma)

(Tweedie's formula). The twins take

- ``denoise(x, sigma)``: D at the noise level sigma (a Python float);
- ``x``: the state x/m at the first sigma, shape (batch, ...) (never modified);
- ``sigmas``: the decreasing noise levels sigma_0 > ... > sigma_n >= 0 of
  the n steps (k-diffusion's ``sigmas`` with the final 0 where it has one);
- ``noise(step, which)``: standard normals of x's shape for step ``step``
  (0-based) and purpose ``which``: :data:`STEP` (the step's noise), :data:`CHURN`
  (the extra noise of a churned step), :data:`BRIDGE` (the second normal of
  ``dpmpp_sde``). The C tables draw them from separate streams; the twins
  only ever ask for what the step uses.

On VE the sigma here is s/m = sqrt(sigma(t)^2 - sigma(0)^2), not score_sde's
sigma(t).

Helpers at the end convert a process's time grid to sigma-space and give the
closed forms for Gaussian data N(mu, v): the denoiser, the probability-flow
map, and the exact output law of any twin (every twin is affine in its start
and its normals when D is affine, :func:`affine_law`).
"""
import math

import numpy as np

#: The ``which`` of a step's normals.
STEP, CHURN, BRIDGE = "step", "churn", "bridge"


def _no_noise(step, which):
    raise ValueError(f"this sampler needs noise (step {step}, {which}); pass noise=")


def to_d(x, sigma, denoised):
    """The Karras ODE derivative dx/dsigma = (x - D)/sigma."""
    return (x - denoised) / sigma


def ancestral_split(sigma, sigma_next, eta=1.0):
    r"""(sigma_down, sigma_up) of an ancestral step sigma -> sigma_next.

    .. math:: \sigma_\uparrow = \min\left(\sigma', \eta \sqrt{\sigma'^2 (\sigma^2 - \sigma'^2)/\sigma^2}\right),
              \quad \sigma_\downarrow = \sqrt{\sigma'^2 - \sigma_\uparrow^2}

    At eta = 1 this is the DDPM posterior's noise: a deterministic step to
    sigma_down plus fresh noise of std sigma_up lands on N(x0, sigma'^2) for
    the exact denoiser (Ho et al. 2020; Song et al. 2021, DDIM, eq. 16).
    """
    if not eta:
        return sigma_next, 0.0
    up = min(sigma_next, eta * math.sqrt(sigma_next ** 2 * (sigma ** 2 - sigma_next ** 2) / sigma ** 2))
    return math.sqrt(sigma_next ** 2 - up ** 2), up


def _churn(x, i, sigma, n, noise, s_churn, s_tmin, s_tmax, s_noise):
    r"""Karras et al. (2022), Algorithm 2, lines 4-6: raise the noise level
    to sigma_hat = (1 + gamma) sigma by adding N(0, sigma_hat^2 - sigma^2),
    gamma = min(S_churn / n, sqrt 2 - 1) for sigma in [S_tmin, S_tmax]."""
    gamma = min(s_churn / n, math.sqrt(2.0) - 1.0) if s_tmin <= sigma <= s_tmax else 0.0
    sigma_hat = sigma * (gamma + 1.0)
    if gamma > 0:
        x = x + noise(i, CHURN) * s_noise * math.sqrt(sigma_hat ** 2 - sigma ** 2)
    return x, sigma_hat


def _prep(x, sigmas, noise):
    x = np.array(x, dtype=np.float64)
    sigmas = [float(s) for s in np.asarray(sigmas, dtype=np.float64)]
    if len(sigmas) < 2 or any(b >= a for a, b in zip(sigmas, sigmas[1:])) or sigmas[-1] < 0:
        raise ValueError(f"sigmas must decrease strictly to a last value >= 0; got {sigmas!r}")
    return x, sigmas, (_no_noise if noise is None else noise)


# -- Karras et al. (2022) and k-diffusion's first- and second-order samplers ---

def euler(denoise, x, sigmas, noise=None, *, s_churn=0.0, s_tmin=0.0, s_tmax=float("inf"), s_noise=1.0):
    r"""Euler on the Karras ODE, with Algorithm 2's churn (Karras et al. 2022).

    .. math:: \tilde x_{i+1} = \hat x_i + (\sigma_{i+1} - \hat\sigma_i)\, \frac{\hat x_i - D(\hat x_i, \hat\sigma_i)}{\hat\sigma_i}

    where (hat x, hat sigma) is the churned state (:func:`_churn`; no churn:
    the state itself). Without churn this is DDIM (eta = 0) in sigma-space.
    """
    x, sigmas, noise = _prep(x, sigmas, noise)
    n = len(sigmas) - 1
    for i in range(n):
        x, sh = _churn(x, i, sigmas[i], n, noise, s_churn, s_tmin, s_tmax, s_noise)
        x = x + to_d(x, sh, denoise(x, sh)) * (sigmas[i + 1] - sh)
    return x


def euler_ancestral(denoise, x, sigmas, noise=None, *, eta=1.0, s_noise=1.0):
    r"""Euler to sigma_down, then fresh noise of std sigma_up (:func:`ancestral_split`).

    .. math:: \tilde x_{i+1} = \tilde x_i + (\sigma_\downarrow - \sigma_i) \frac{\tilde x_i - D_i}{\sigma_i}
              + s_\text{noise}\, \sigma_\uparrow z_i

    with no noise on a step to sigma = 0. In sigma-space this is DDIM with
    eta (Song, Meng & Ermon 2021, eq. 12): see :func:`ddim`.
    """
    x, sigmas, noise = _prep(x, sigmas, noise)
    for i in range(len(sigmas) - 1):
        s, s1 = sigmas[i], sigmas[i + 1]
        den = denoise(x, s)
        down, up = ancestral_split(s, s1, eta)
        x = x + to_d(x, s, den) * (down - s)
        if s1 > 0:
            x = x + noise(i, STEP) * s_noise * up
    return x


def heun(denoise, x, sigmas, noise=None, *, s_churn=0.0, s_tmin=0.0, s_tmax=float("inf"), s_noise=1.0):
    r"""Karras et al. (2022), Algorithm 2: Heun's method on the Karras ODE
    after the churn, Euler on a last step to sigma = 0.

    .. math:: x' = \hat x + (\sigma_{i+1} - \hat\sigma) d, \quad
              \tilde x_{i+1} = \hat x + (\sigma_{i+1} - \hat\sigma)\, \frac{d + d'}{2},
              \quad d = \frac{\hat x - D(\hat x, \hat\sigma)}{\hat\sigma},\
              d' = \frac{x' - D(x', \sigma_{i+1})}{\sigma_{i+1}}
    """
    x, sigmas, noise = _prep(x, sigmas, noise)
    n = len(sigmas) - 1
    for i in range(n):
        x, sh = _churn(x, i, sigmas[i], n, noise, s_churn, s_tmin, s_tmax, s_noise)
        d = to_d(x, sh, denoise(x, sh))
        dt = sigmas[i + 1] - sh
        if sigmas[i + 1] == 0:
            x = x + d * dt
        else:
            x2 = x + d * dt
            d2 = to_d(x2, sigmas[i + 1], denoise(x2, sigmas[i + 1]))
            x = x + (d + d2) / 2 * dt
    return x


def _geometric_mid(a, b):
    """exp of the mean of log a and log b: sigma at the midpoint in lambda."""
    return math.exp(0.5 * (math.log(a) + math.log(b)))


def dpm_2(denoise, x, sigmas, noise=None, *, s_churn=0.0, s_tmin=0.0, s_tmax=float("inf"), s_noise=1.0):
    r"""k-diffusion's DPM-Solver-2 in sigma-space (Lu et al. 2022, Algorithm 1
    with r1 = 1/2; Karras et al.'s churn): an Euler half step in lambda to
    sigma_mid = sqrt(hat sigma sigma_{i+1}), then the full step with the
    slope there,

    .. math:: \tilde x_{i+1} = \hat x + (\sigma_{i+1} - \hat\sigma)\, d(\hat x + (\sigma_\text{mid} - \hat\sigma) d, \sigma_\text{mid});

    Euler on a last step to sigma = 0.
    """
    x, sigmas, noise = _prep(x, sigmas, noise)
    n = len(sigmas) - 1
    for i in range(n):
        x, sh = _churn(x, i, sigmas[i], n, noise, s_churn, s_tmin, s_tmax, s_noise)
        d = to_d(x, sh, denoise(x, sh))
        if sigmas[i + 1] == 0:
            x = x + d * (sigmas[i + 1] - sh)
        else:
            mid = _geometric_mid(sh, sigmas[i + 1])
            x2 = x + d * (mid - sh)
            x = x + to_d(x2, mid, denoise(x2, mid)) * (sigmas[i + 1] - sh)
    return x


def dpm_2_ancestral(denoise, x, sigmas, noise=None, *, eta=1.0, s_noise=1.0):
    r""":func:`dpm_2` to sigma_down (midpoint sqrt(sigma_i sigma_down)), then
    noise of std sigma_up; a step whose sigma_down is 0 is Euler without noise."""
    x, sigmas, noise = _prep(x, sigmas, noise)
    for i in range(len(sigmas) - 1):
        s = sigmas[i]
        d = to_d(x, s, denoise(x, s))
        down, up = ancestral_split(s, sigmas[i + 1], eta)
        if down == 0:
            x = x + d * (down - s)
        else:
            mid = _geometric_mid(s, down)
            x2 = x + d * (mid - s)
            x = x + to_d(x2, mid, denoise(x2, mid)) * (down - s)
            x = x + noise(i, STEP) * s_noise * up
    return x


def lms_coefficients(sigmas, i, order):
    r"""The Adams-Bashforth weights of step i over [sigma_i, sigma_{i+1}]:
    the integrals of the Lagrange basis polynomials through the last
    ``order`` nodes sigma_i, sigma_{i-1}, ...,

    .. math:: c_j = \int_{\sigma_i}^{\sigma_{i+1}} \prod_{k \ne j}
              \frac{\tau - \sigma_{i-k}}{\sigma_{i-j} - \sigma_{i-k}}\, d\tau
              = h \int_0^1 \prod_{k \ne j} \frac{u - u_k}{u_j - u_k}\, du,

    h = sigma_{i+1} - sigma_i, u_k = (sigma_{i-k} - sigma_i)/h, integrated
    exactly in the scaled variable u (no cancellation between large
    primitives); k-diffusion integrates them with ``scipy.integrate.quad``.
    """
    h = sigmas[i + 1] - sigmas[i]
    nodes = [(sigmas[i - k] - sigmas[i]) / h for k in range(order)]
    out = []
    for j in range(order):
        poly = np.polynomial.Polynomial([1.0])
        for k in range(order):
            if k != j:
                poly = poly * np.polynomial.Polynomial([-nodes[k], 1.0]) / (nodes[j] - nodes[k])
        prim = poly.integ()
        out.append(h * float(prim(1.0) - prim(0.0)))
    return out


def lms(denoise, x, sigmas, noise=None, *, order=4):
    r"""Linear multistep (Adams-Bashforth) on the Karras ODE over sigma, with
    the variable steps of the grid: order min(i + 1, ``order``) at step i,

    .. math:: \tilde x_{i+1} = \tilde x_i + \sum_{j < k} c_j\, d_{i-j},

    the weights of :func:`lms_coefficients` (k-diffusion's ``sample_lms``;
    Karras et al. 2022 discuss it as a baseline).
    """
    x, sigmas, noise = _prep(x, sigmas, noise)
    ds = []
    for i in range(len(sigmas) - 1):
        ds.append(to_d(x, sigmas[i], denoise(x, sigmas[i])))
        ds = ds[-order:]
        k = min(i + 1, order)
        coeffs = lms_coefficients(sigmas, i, k)
        x = x + sum(c * d for c, d in zip(coeffs, reversed(ds)))
    return x


# -- DPM-Solver++ (Lu et al. 2022b), data prediction, lambda = -log sigma ------

def dpmpp_2s_ancestral(denoise, x, sigmas, noise=None, *, eta=1.0, s_noise=1.0):
    r"""DPM-Solver++(2S) (Lu et al. 2022b, Algorithm 1 with r = 1/2) to
    sigma_down, then noise of std sigma_up. With h = lambda_down - lambda_i
    and s the midpoint in lambda,

    .. math:: u = \frac{\sigma_s}{\sigma_i} \tilde x - (e^{-h/2} - 1) D_i, \qquad
              \tilde x_{i+1} = \frac{\sigma_\downarrow}{\sigma_i} \tilde x - (e^{-h} - 1) D(u, \sigma_s)
              + s_\text{noise}\, \sigma_\uparrow z_i;

    Euler when sigma_down = 0; no noise on a step to sigma = 0.
    """
    x, sigmas, noise = _prep(x, sigmas, noise)
    for i in range(len(sigmas) - 1):
        s = sigmas[i]
        den = denoise(x, s)
        down, up = ancestral_split(s, sigmas[i + 1], eta)
        if down == 0:
            x = x + to_d(x, s, den) * (down - s)
        else:
            t, t_next = -math.log(s), -math.log(down)
            h = t_next - t
            s_mid = math.exp(-(t + 0.5 * h))
            x2 = (s_mid / s) * x - math.expm1(-0.5 * h) * den
            x = (down / s) * x - math.expm1(-h) * denoise(x2, s_mid)
        if sigmas[i + 1] > 0:
            x = x + noise(i, STEP) * s_noise * up
    return x


def brownian_pair(z1, z2, sigma, sigma_mid, sigma_next):
    r"""The two normalized increments of one Brownian motion W indexed by
    sigma, both from sigma_i, built from independent standard normals:

    .. math:: n_1 = \frac{W(\sigma_\text{mid}) - W(\sigma_i)}{\sqrt{a}} = z_1, \qquad
              n_2 = \frac{W(\sigma_{i+1}) - W(\sigma_i)}{\sqrt{b}}
                  = \frac{\sqrt{a}\, z_1 + \sqrt{b - a}\, z_2}{\sqrt{b}},

    a = sigma_i - sigma_mid, b = sigma_i - sigma_{i+1} (b > a > 0): the
    second increment is the first plus an independent one over
    [sigma_{i+1}, sigma_mid], so corr(n_1, n_2) = sqrt(a/b). This is the law
    of k-diffusion's ``BrownianTreeNoiseSampler`` (a Brownian tree over
    sigma) for these two queries.
    """
    a, b = sigma - sigma_mid, sigma - sigma_next
    return z1, (math.sqrt(a) * z1 + math.sqrt(b - a) * z2) / math.sqrt(b)


def dpmpp_sde(denoise, x, sigmas, noise=None, *, eta=1.0, s_noise=1.0, r=0.5):
    r"""DPM-Solver++ (stochastic), k-diffusion's ``sample_dpmpp_sde``: two
    ancestral DPM-Solver++ stages, from sigma_i to sigma_s (lambda_s =
    lambda_i + r h) and from sigma_i to sigma_{i+1}, each first order in its
    own (sigma_down, sigma_up) split,

    .. math:: u = \frac{\sigma_{\downarrow,s}}{\sigma_i} \tilde x - (e^{\lambda_i - \lambda_{\downarrow,s}} - 1) D_i
                  + s_\text{noise} \sigma_{\uparrow,s} n_1, \quad
              \tilde x_{i+1} = \frac{\sigma_\downarrow}{\sigma_i} \tilde x
                  - (e^{\lambda_i - \lambda_\downarrow} - 1)\left[(1 - \tfrac{1}{2r}) D_i + \tfrac{1}{2r} D(u, \sigma_s)\right]
                  + s_\text{noise} \sigma_\uparrow n_2,

    with (n_1, n_2) the increments of one Brownian motion over sigma, both
    starting at sigma_i (:func:`brownian_pair` from z_1 = ``noise(i, STEP)``,
    z_2 = ``noise(i, BRIDGE)``). Euler on a last step to sigma = 0.
    """
    x, sigmas, noise = _prep(x, sigmas, noise)
    fac = 1.0 / (2.0 * r)
    for i in range(len(sigmas) - 1):
        s, s1 = sigmas[i], sigmas[i + 1]
        den = denoise(x, s)
        if s1 == 0:
            x = x + to_d(x, s, den) * (s1 - s)
            continue
        t, t_next = -math.log(s), -math.log(s1)
        h = t_next - t
        s_mid = math.exp(-(t + h * r))
        n1, n2 = brownian_pair(noise(i, STEP), noise(i, BRIDGE), s, s_mid, s1)
        sd, su = ancestral_split(s, s_mid, eta)
        x2 = (sd / s) * x - math.expm1(t + math.log(sd)) * den
        x2 = x2 + n1 * s_noise * su
        den2 = denoise(x2, s_mid)
        sd, su = ancestral_split(s, s1, eta)
        x = (sd / s) * x - math.expm1(t + math.log(sd)) * ((1 - fac) * den + fac * den2)
        x = x + n2 * s_noise * su
    return x


def dpmpp_2m(denoise, x, sigmas, noise=None):
    r"""DPM-Solver++(2M) (Lu et al. 2022b, Algorithm 2): with h_i = lambda_{i+1} - lambda_i
    and r = h_{i-1}/h_i,

    .. math:: \tilde x_{i+1} = \frac{\sigma_{i+1}}{\sigma_i} \tilde x_i - (e^{-h_i} - 1)
              \left[\left(1 + \tfrac{1}{2r}\right) D_i - \tfrac{1}{2r} D_{i-1}\right];

    first order (D_i alone) on the first step and on a step to sigma = 0
    (there x_{i+1} = D_i).
    """
    x, sigmas, noise = _prep(x, sigmas, noise)
    old = None
    for i in range(len(sigmas) - 1):
        s, s1 = sigmas[i], sigmas[i + 1]
        den = denoise(x, s)
        if s1 == 0:
            x = den
        else:
            h = math.log(s) - math.log(s1)
            if old is None:
                dd = den
            else:
                rr = (math.log(sigmas[i - 1]) - math.log(s)) / h
                dd = (1 + 1 / (2 * rr)) * den - (1 / (2 * rr)) * old
            x = (s1 / s) * x - math.expm1(-h) * dd
        old = den
    return x


def dpmpp_2m_sde(denoise, x, sigmas, noise=None, *, eta=1.0, s_noise=1.0, solver_type="midpoint"):
    r"""DPM-Solver++(2M) SDE (k-diffusion's ``sample_dpmpp_2m_sde``; the
    SDE-DPM-Solver++ of Lu et al. 2022b, section 5, with a multistep
    correction). With h = lambda_{i+1} - lambda_i, r = h_{i-1}/h_i and
    :math:`\phi = 1 - e^{-(1+\eta) h}`,

    .. math:: \tilde x_{i+1} = \frac{\sigma_{i+1}}{\sigma_i} e^{-\eta h} \tilde x_i + \phi D_i
              + c\, \frac{D_i - D_{i-1}}{r}
              + s_\text{noise}\, \sigma_{i+1} \sqrt{1 - e^{-2\eta h}}\, z_i,

    c = phi/2 ("midpoint") or c = 1 - phi/((1 + eta) h) ("heun"); the correction is absent on
    the first step. A step to sigma = 0 returns D_i. With eta = 0 this is
    :func:`dpmpp_2m`.
    """
    if solver_type not in ("midpoint", "heun"):
        raise ValueError(f"solver_type must be 'midpoint' or 'heun'; got {solver_type!r}")
    x, sigmas, noise = _prep(x, sigmas, noise)
    old, h_last = None, None
    for i in range(len(sigmas) - 1):
        s, s1 = sigmas[i], sigmas[i + 1]
        den = denoise(x, s)
        h = None
        if s1 == 0:
            x = den
        else:
            h = math.log(s) - math.log(s1)
            eh = eta * h
            x = (s1 / s) * math.exp(-eh) * x + (-math.expm1(-h - eh)) * den
            if old is not None:
                rr = h_last / h
                if solver_type == "heun":
                    x = x + ((-math.expm1(-h - eh)) / (-h - eh) + 1) * (1 / rr) * (den - old)
                else:
                    x = x + 0.5 * (-math.expm1(-h - eh)) * (1 / rr) * (den - old)
            if eta:
                x = x + noise(i, STEP) * s1 * math.sqrt(-math.expm1(-2 * eh)) * s_noise
        old, h_last = den, h
    return x


def dpmpp_3m_sde(denoise, x, sigmas, noise=None, *, eta=1.0, s_noise=1.0):
    r"""DPM-Solver++(3M) SDE (k-diffusion's ``sample_dpmpp_3m_sde``): the
    exponential integrator of :func:`dpmpp_2m_sde` with the first and second
    divided differences of D over the last three lambdas. With
    h_eta = (1 + eta) h (so e^{-h_eta} = (sigma_{i+1}/sigma_i) e^{-eta h}),

    .. math:: \tilde x_{i+1} = e^{-h_\eta} \tilde x_i + (1 - e^{-h_\eta}) D_i
              + \varphi_2 d_1 - \varphi_3 d_2
              + s_\text{noise}\, \sigma_{i+1} \sqrt{1 - e^{-2\eta h}}\, z_i,
              \qquad \varphi_2 = \frac{e^{-h_\eta} - 1}{h_\eta} + 1, \quad
              \varphi_3 = \frac{\varphi_2}{h_\eta} - \frac12,

    d_1 and d_2 the first and second divided differences of D in units of h
    (only d_1 on the second step, neither on the first). A step to sigma = 0
    returns D_i.
    """
    x, sigmas, noise = _prep(x, sigmas, noise)
    d_1 = d_2 = h_1 = h_2 = None
    for i in range(len(sigmas) - 1):
        s, s1 = sigmas[i], sigmas[i + 1]
        den = denoise(x, s)
        h = None
        if s1 == 0:
            x = den
        else:
            h = math.log(s) - math.log(s1)
            he = h * (eta + 1)
            x = math.exp(-he) * x + (-math.expm1(-he)) * den
            if h_2 is not None:
                r0, r1 = h_1 / h, h_2 / h
                d1_0 = (den - d_1) / r0
                d1_1 = (d_1 - d_2) / r1
                d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
                d2 = (d1_0 - d1_1) / (r0 + r1)
                phi_2 = math.expm1(-he) / he + 1
                phi_3 = phi_2 / he - 0.5
                x = x + phi_2 * d1 - phi_3 * d2
            elif h_1 is not None:
                phi_2 = math.expm1(-he) / he + 1
                x = x + phi_2 * (den - d_1) / (h_1 / h)
            if eta:
                x = x + noise(i, STEP) * s1 * math.sqrt(-math.expm1(-2 * h * eta)) * s_noise
        d_1, d_2 = den, d_1
        h_1, h_2 = h, h_1
    return x


# -- singlestep DPM-Solver (Lu et al. 2022a), noise prediction -----------------

def dpm_solver(denoise, x, sigmas, noise=None, *, order=3):
    r"""Singlestep DPM-Solver-k (Lu et al. 2022a, Algorithms 1 and 2 / eqs.
    (3.7)-(3.9)) with the noise prediction eps = (x~ - D)/sigma, one full
    order-k step (k evaluations) on every interval. In x~ = x/m, with
    h = lambda' - lambda, lambda = -log sigma, and e^h - 1 = sigma/sigma' - 1:

    - k = 1: :math:`\tilde x' = \tilde x - \sigma' (e^h - 1)\, \epsilon(\tilde x, \sigma)` (DDIM);
    - k = 2, r_1 = 1/2: :math:`u = \tilde x - \sigma_{s_1} (e^{r_1 h} - 1) \epsilon`,
      :math:`\tilde x' = \tilde x - \sigma' (e^h - 1) \epsilon - \frac{\sigma'}{2 r_1} (e^h - 1)(\epsilon(u, \sigma_{s_1}) - \epsilon)`;
    - k = 3, r_1 = 1/3, r_2 = 2/3: :math:`u_1` as above,
      :math:`u_2 = \tilde x - \sigma_{s_2}(e^{r_2 h} - 1)\epsilon - \sigma_{s_2} \frac{r_2}{r_1}\left(\frac{e^{r_2 h} - 1}{r_2 h} - 1\right)(\epsilon_1 - \epsilon)`,
      :math:`\tilde x' = \tilde x - \sigma'(e^h - 1)\epsilon - \frac{\sigma'}{r_2}\left(\frac{e^h - 1}{h} - 1\right)(\epsilon_2 - \epsilon)`.

    lambda must be finite at every grid point: the last sigma must be > 0.
    """
    if order not in (1, 2, 3):
        raise ValueError(f"order must be 1, 2 or 3; got {order!r}")
    x, sigmas, noise = _prep(x, sigmas, noise)
    if sigmas[-1] == 0:
        raise ValueError("dpm_solver needs a last sigma > 0 (lambda = -log sigma is infinite at 0)")

    def eps(u, sig):
        return (u - denoise(u, sig)) / sig

    for i in range(len(sigmas) - 1):
        s, s1 = sigmas[i], sigmas[i + 1]
        lam, lam1 = -math.log(s), -math.log(s1)
        h = lam1 - lam
        e0 = eps(x, s)
        if order == 1:
            x = x - s1 * math.expm1(h) * e0
        elif order == 2:
            r1 = 0.5
            sig1 = math.exp(-(lam + r1 * h))
            u = x - sig1 * math.expm1(r1 * h) * e0
            e1 = eps(u, sig1)
            x = x - s1 * math.expm1(h) * e0 - s1 / (2 * r1) * math.expm1(h) * (e1 - e0)
        else:
            r1, r2 = 1 / 3, 2 / 3
            sig1, sig2 = math.exp(-(lam + r1 * h)), math.exp(-(lam + r2 * h))
            u1 = x - sig1 * math.expm1(r1 * h) * e0
            e1 = eps(u1, sig1)
            u2 = x - sig2 * math.expm1(r2 * h) * e0 - sig2 * (r2 / r1) * (math.expm1(r2 * h) / (r2 * h) - 1) * (e1 - e0)
            e2 = eps(u2, sig2)
            x = x - s1 * math.expm1(h) * e0 - s1 / r2 * (math.expm1(h) / h - 1) * (e2 - e0)
    return x


# -- UniPC (Zhao et al. 2023), data prediction, diffusers' defaults ------------

def _unipc_coefficients(rks, hh, order, variant):
    """(R, b) of UniPC's linear system: R[k-1, j] = rks[j]^(k-1) and
    b_k = k! phi_{k+1}(hh) / B(h) (hh = -h for data prediction)."""
    h_phi_1 = math.expm1(hh)
    h_phi_k = h_phi_1 / hh - 1
    fact = 1
    b_h = hh if variant == "bh1" else math.expm1(hh)
    R, b = [], []
    for k in range(1, order + 1):
        R.append(np.asarray(rks, dtype=np.float64) ** (k - 1))
        b.append(h_phi_k * fact / b_h)
        fact *= k + 1
        h_phi_k = h_phi_k / hh - 1 / fact
    return np.array(R), np.array(b), h_phi_1, b_h


def unipc(denoise, x, sigmas, noise=None, *, order=2, variant="bh2", lower_order_final=True):
    r"""UniPC (Zhao et al. 2023) with the defaults of diffusers'
    ``UniPCMultistepScheduler``: data prediction, B(h) = e^{-h} - 1 ("bh2";
    "bh1": B(h) = -h), order 2 (option 3), a lower order on the last steps
    (order min(p, n - i) at step i) and after the start (min(p, i + 1)).

    Predictor UniP-p from sigma_i (lambda_i) to sigma_{i+1}, h = lambda_{i+1} - lambda_i,
    D_i the last model value and r_k = (lambda_{i-k} - lambda_i)/h:

    .. math:: \tilde x^p_{i+1} = \frac{\sigma_{i+1}}{\sigma_i} \tilde x_i - (e^{-h} - 1) D_i
              - B(h) \sum_{k=1}^{p-1} \rho^p_k \frac{D_{i-k} - D_i}{r_k}

    (rho^p = 1/2 for p = 2; else R rho = b over the first p - 1 rows).
    Corrector UniC-p after every predictor step but the last: with
    D_{i+1} = D(x^p_{i+1}, sigma_{i+1}) (the evaluation the next predictor reuses),

    .. math:: \tilde x_{i+1} = \frac{\sigma_{i+1}}{\sigma_i} \tilde x_i - (e^{-h} - 1) D_i
              - B(h)\left[\sum_{k=1}^{p-1} \rho^c_k \frac{D_{i-k} - D_i}{r_k} + \rho^c_p (D_{i+1} - D_i)\right]

    with rho^c = 1/2 for p = 1, else R rho^c = b, and p the order of that
    predictor step. A step to sigma = 0 must be first order (it is, with
    ``lower_order_final``), and returns D_i. (diffusers' "bh1" ends in NaN
    there: B(h) = -h is infinite and multiplies a zero correction.)

    The last step has no corrector and is first order: its O(h^2) local
    error caps the global order at 2 once everything else is smaller
    (visible for order 3 on VP/logSNR beyond 256 steps).
    """
    if order not in (1, 2, 3):
        raise ValueError(f"order must be 1, 2 or 3; got {order!r}")
    if variant not in ("bh1", "bh2"):
        raise ValueError(f"variant must be 'bh1' or 'bh2'; got {variant!r}")
    x, sigmas, noise = _prep(x, sigmas, noise)
    n = len(sigmas) - 1
    lams = [(-math.log(s) if s > 0 else math.inf) for s in sigmas]
    outs = []  # (step index, D) of the last `order` evaluations
    last_x, last_order = None, None
    for i in range(n):
        den = denoise(x, sigmas[i])
        if i > 0:
            # UniC-p for the step (i-1 -> i), with the evaluation at the predicted x_i
            p = last_order
            h = lams[i] - lams[i - 1]
            j0, m0 = outs[-1]
            rks, d1s = [], []
            for k in range(1, p):
                jk, mk = outs[-(k + 1)]
                rk = (lams[jk] - lams[j0]) / h
                rks.append(rk)
                d1s.append((mk - m0) / rk)
            rks.append(1.0)
            R, b, h_phi_1, b_h = _unipc_coefficients(rks, -h, p, variant)
            rhos = np.array([0.5]) if p == 1 else np.linalg.solve(R, b)
            corr = sum((rho * d for rho, d in zip(rhos[:-1], d1s)), np.zeros_like(x))
            x = (sigmas[i] / sigmas[i - 1]) * last_x - h_phi_1 * m0 - b_h * (corr + rhos[-1] * (den - m0))
        outs = (outs + [(i, den)])[-order:]
        p = min(order, n - i) if lower_order_final else order
        p = min(p, i + 1)
        last_x, last_order = x, p
        s, s1 = sigmas[i], sigmas[i + 1]
        if s1 == 0:
            if p != 1:
                raise ValueError("a UniPC step to sigma = 0 must be first order (use lower_order_final)")
            x = den
            continue
        h = lams[i + 1] - lams[i]
        j0, m0 = outs[-1]
        rks, d1s = [], []
        for k in range(1, p):
            jk, mk = outs[-(k + 1)]
            rk = (lams[jk] - lams[j0]) / h
            rks.append(rk)
            d1s.append((mk - m0) / rk)
        rks.append(1.0)
        R, b, h_phi_1, b_h = _unipc_coefficients(rks, -h, p, variant)
        x_new = (s1 / s) * x - h_phi_1 * m0
        if p > 1:
            rhos = np.array([0.5]) if p == 2 else np.linalg.solve(R[:-1, :-1], b[:-1])
            x_new = x_new - b_h * sum(rho * d for rho, d in zip(rhos, d1s))
        x = x_new
    return x


# -- PNDM / PLMS (Liu et al. 2022) --------------------------------------------

def plms(denoise, x, sigmas, noise=None, *, sigmas_mid=None, warmup="prk"):
    r"""Pseudo linear multistep (Liu et al. 2022, PNDM, eqs. (9), (12), (13)).

    The transfer part phi(x, eps, sigma -> sigma') is DDIM's step, in
    sigma-space :math:`\tilde x + (\sigma' - \sigma)\epsilon`; the gradient
    part combines the noise predictions eps = (x~ - D)/sigma with the fixed
    Adams-Bashforth weights of equal steps,

    .. math:: \epsilon' = \tfrac{1}{24}(55 \epsilon_i - 59 \epsilon_{i-1} + 37 \epsilon_{i-2} - 9 \epsilon_{i-3}),

    the weights of equal steps. In sigma-space the transfer is Euler in
    sigma with slope eps, so PLMS is Adams-Bashforth-4 in sigma exactly when
    the sigma steps are equal (EDM's uniform grid: order 4, measured). On
    any other grid the weights are applied unchanged, as diffusers does on
    its equally spaced timesteps (whose sigma steps are not equal): on
    smoothly varying sigma steps each weight is off by O(h), a local error
    O(h^3), so the global order is 2 (measured on logSNR, Karras and
    uniform-t VP grids).

    Warm-up: ``"prk"`` (the paper): the first three steps are pseudo
    Runge-Kutta steps, four evaluations each at sigma_i, the midpoint
    ``sigmas_mid[i]`` (twice) and sigma_{i+1},

    .. math:: \epsilon' = \tfrac16(\epsilon_1 + 2\epsilon_2 + 2\epsilon_3 + \epsilon_4),

    each stage a transfer from x_i; ``"ab"`` (diffusers' ``skip_prk_steps``):
    the first step averages eps at x_i and at the Euler prediction of
    x_{i+1}, then the Adams-Bashforth weights of order 2 and 3 until four
    values exist. ``sigmas_mid`` (sigma at the middle time of each step) is
    needed for "prk" only.
    """
    if warmup not in ("prk", "ab"):
        raise ValueError(f"warmup must be 'prk' or 'ab'; got {warmup!r}")
    x, sigmas, noise = _prep(x, sigmas, noise)
    n = len(sigmas) - 1

    def eps(u, sig):
        return (u - denoise(u, sig)) / sig

    def transfer(u, e, a, b):
        return u + (b - a) * e

    ets = []
    for i in range(n):
        s, s1 = sigmas[i], sigmas[i + 1]
        if warmup == "prk" and i < 3 and i < n:
            if sigmas_mid is None:
                raise ValueError("warmup='prk' needs sigmas_mid, sigma at the middle of each step")
            sm = float(sigmas_mid[i])
            e1 = eps(x, s)
            ets.append(e1)
            e2 = eps(transfer(x, e1, s, sm), sm)
            e3 = eps(transfer(x, e2, s, sm), sm)
            e4 = eps(transfer(x, e3, s, s1), s1)
            x = transfer(x, (e1 + 2 * e2 + 2 * e3 + e4) / 6, s, s1)
            continue
        e = eps(x, s)
        ets = (ets + [e])[-4:]
        if len(ets) == 1:
            e_pred = eps(transfer(x, e, s, s1), s1)
            comb = (e + e_pred) / 2
        elif len(ets) == 2:
            comb = (3 * ets[-1] - ets[-2]) / 2
        elif len(ets) == 3:
            comb = (23 * ets[-1] - 16 * ets[-2] + 5 * ets[-3]) / 12
        else:
            comb = (55 * ets[-1] - 59 * ets[-2] + 37 * ets[-3] - 9 * ets[-4]) / 24
        x = transfer(x, comb, s, s1)
    return x


def ddim(denoise, x, sigmas, noise=None, *, eta=0.0):
    r"""DDIM (Song, Meng & Ermon 2021, eq. 12) in sigma-space: the
    first-order exponential integrator in lambda with data prediction,

    .. math:: \tilde x_{i+1} = \frac{\sigma_\downarrow}{\sigma_i} \tilde x_i
              + \left(1 - \frac{\sigma_\downarrow}{\sigma_i}\right) D_i + \sigma_\uparrow z_i,

    (sigma_down, sigma_up) = :func:`ancestral_split` with eta: DDIM's
    sigma_eta / m_{i+1} = eta sqrt(sigma'^2 (sigma^2 - sigma'^2)/sigma^2) on
    VP. With eta = 0 it is Euler in sigma (:func:`euler`) and DPM-Solver-1.
    No noise on a step to sigma = 0.
    """
    x, sigmas, noise = _prep(x, sigmas, noise)
    for i in range(len(sigmas) - 1):
        s, s1 = sigmas[i], sigmas[i + 1]
        den = denoise(x, s)
        down, up = ancestral_split(s, s1, eta)
        ratio = down / s
        x = ratio * x + (1 - ratio) * den
        if up > 0:
            x = x + noise(i, STEP) * up
    return x


#: name -> (twin, deterministic with its default options?, the ``which`` of
#: every normal it may draw: churn options and eta > 0 draw them).
SAMPLERS = {
    "euler": (euler, True, (CHURN,)),
    "euler_ancestral": (euler_ancestral, False, (STEP,)),
    "heun": (heun, True, (CHURN,)),
    "dpm_2": (dpm_2, True, (CHURN,)),
    "dpm_2_ancestral": (dpm_2_ancestral, False, (STEP,)),
    "lms": (lms, True, ()),
    "dpmpp_2s_ancestral": (dpmpp_2s_ancestral, False, (STEP,)),
    "dpmpp_sde": (dpmpp_sde, False, (STEP, BRIDGE)),
    "dpmpp_2m": (dpmpp_2m, True, ()),
    "dpmpp_2m_sde": (dpmpp_2m_sde, False, (STEP,)),
    "dpmpp_3m_sde": (dpmpp_3m_sde, False, (STEP,)),
    "dpm_solver": (dpm_solver, True, ()),
    "unipc": (unipc, True, ()),
    "plms": (plms, True, ()),
    "ddim": (ddim, True, (STEP,)),
}


# -- sigma-space and Gaussian data: test helpers -------------------------------

def sigma_space(process, grid):
    """(sigmas, m) on a time grid: sigma = s/m and the mean coefficient m."""
    m, s = process.marginal_coefficients(np.asarray(grid, dtype=np.float64))
    return s / m, m


def denoiser_from_score(score, process):
    r"""D(x~, sigma) = (x + s^2 score(x, t))/m at t = t(sigma), x = m x~:
    Tweedie's formula for a score of the process's own variables."""
    def denoise(xt, sigma):
        t = float(process.t_of_sigma(sigma))
        m, s = process.marginal_coefficients(t)
        x = m * xt
        return (x + s * s * np.asarray(score(x, t))) / m
    return denoise


def gaussian_denoiser(mu, v):
    r"""The exact denoiser of data N(mu, v) (per coordinate) in sigma-space:
    x~ = x_0 + sigma z, so E[x_0 | x~] = mu + v (x~ - mu)/(v + sigma^2)."""
    def denoise(xt, sigma):
        return mu + v / (v + sigma * sigma) * (xt - mu)
    return denoise


def gaussian_flow_map(process, mu, v, x_start, t_start, t_end):
    r"""The probability-flow map of data N(mu, v) in the process's variables:

    .. math:: x_\text{end} = m_e \mu + \mathrm{sd}_e \frac{x_\text{start} - m_s \mu}{\mathrm{sd}_s},
              \qquad \mathrm{sd}_t^2 = m_t^2 v + s_t^2

    (the ODE moves every quantile of the Gaussian marginal to the same
    quantile: its solution is this affine map)."""
    ms, ss = process.marginal_coefficients(t_start)
    me, se = process.marginal_coefficients(t_end)
    sds, sde = math.sqrt(ms * ms * v + ss * ss), math.sqrt(me * me * v + se * se)
    return me * mu + sde * (np.asarray(x_start) - ms * mu) / sds


def gaussian_flow_map_sigma(mu, v, x_start, sigma_start, sigma_end):
    """The same map in sigma-space (x~ = x/m): mu + sqrt(v + se^2)/sqrt(v + ss^2) (x~ - mu)."""
    return mu + math.sqrt(v + sigma_end ** 2) / math.sqrt(v + sigma_start ** 2) * (np.asarray(x_start) - mu)


class DiscreteChain:
    r"""A DDPM or SMLD chain seen by a sigma-space sampler: k-diffusion's
    ``DiscreteSchedule`` (``k_diffusion/external.py``), written from its
    definition and from the chains' (Ho et al. 2020; Song & Ermon 2019).

    The chain has the noise levels of its indices i = 1..N (index 0 is the
    data, sigma = 0), from the chain's own parameters:

    - DDPM (betas): :math:`\bar\alpha_i = \prod_{j \le i}(1 - \beta_j)`,
      :math:`\sigma_i = \sqrt{(1 - \bar\alpha_i)/\bar\alpha_i}`, and the
      marginal of x = m x~ at any sigma is m = 1/sqrt(1 + sigma^2),
      s = sigma m (m^2 + s^2 = 1, what k-diffusion's c_in = 1/sqrt(sigma^2 + 1)
      assumes);
    - SMLD (sigmas, sigma0): x_i = x_0 + sqrt(sigma_i^2 - sigma_0^2) z, so
      :math:`\sigma_i = \sqrt{\sigma_i^2 - \sigma_0^2}`, m = 1, s = sigma.

    k-diffusion's timestep is tau = i - 1 (0-based over the noise levels);
    a sigma between two levels has the fractional timestep that is linear
    in log sigma between them (``sigma_to_t``, quantize=False),

    .. math:: \tau(\sigma) = (1 - w)\,\ell + w\,(\ell + 1), \qquad
              w = \frac{\log\sigma - \log\sigma_{(\ell)}}{\log\sigma_{(\ell+1)} - \log\sigma_{(\ell)}},

    with sigma_(tau) the level of timestep tau and l the last timestep whose
    level is <= sigma (clamped to [0, N - 2], w clamped to [0, 1], as
    k-diffusion does), and its inverse ``t_to_sigma`` interpolates log sigma
    linearly in tau. The chain's time is t = i T / N = (tau + 1) T / N.
    """

    def __init__(self, chain):
        self.N, self.T = int(chain.N), float(chain.T)
        if hasattr(chain, "betas"):
            self.family = "ddpm"
            log_abar = np.cumsum(np.log1p(-np.asarray(chain.betas, dtype=np.float64)))
            # (1 - abar)/abar = 1/abar - 1 = expm1(-log abar): no cancellation near abar = 1
            self.levels = np.sqrt(np.expm1(-log_abar))
        else:
            self.family = "smld"
            sig = np.asarray(chain.sigmas, dtype=np.float64)
            s0 = float(chain.sigma0)
            self.levels = np.sqrt((sig - s0) * (sig + s0))
        self.log_levels = np.log(self.levels)

    def sigmas(self):
        """The run's noise levels sigma_N > ... > sigma_1 > 0 = sigma(index 0)."""
        return np.r_[self.levels[::-1], 0.0]

    def sigma_to_t(self, sigma):
        """The fractional timestep tau of a noise level (k-diffusion's rule)."""
        ls = math.log(sigma)
        low = int(np.sum(self.log_levels <= ls)) - 1
        low = min(max(low, 0), self.N - 2)
        lo, hi = self.log_levels[low], self.log_levels[low + 1]
        w = min(max((lo - ls) / (lo - hi), 0.0), 1.0)
        return (1 - w) * low + w * (low + 1)

    def t_to_sigma(self, tau):
        """The noise level at a fractional timestep tau: log sigma linear in tau."""
        low = math.floor(tau)
        high = min(low + 1, self.N - 1)
        w = tau - low
        return math.exp((1 - w) * self.log_levels[low] + w * self.log_levels[high])

    def time(self, tau):
        """The chain's time t = (tau + 1) T / N of timestep tau."""
        return (tau + 1) * self.T / self.N

    def marginal(self, sigma):
        """(m, s) of x = m x~ at the noise level sigma, by the chain's family."""
        if self.family == "ddpm":
            m = 1.0 / math.sqrt(1.0 + sigma * sigma)
            return m, sigma * m
        return 1.0, sigma

    def mid_sigmas(self):
        """sigma at the middle time of every step of the run (tau - 1/2 from
        each level's tau): PLMS's pseudo Runge-Kutta stages."""
        return np.array([self.t_to_sigma(tau - 0.5) for tau in range(self.N - 1, 0, -1)])

    def denoiser(self, score):
        r"""D(x~, sigma) = (x + s^2 score(x, t, m, s))/m with x = m x~, (m, s)
        the family's marginal at sigma and t the chain time of sigma's
        fractional timestep: what a score of the chain's variables gives a
        sigma-space sampler (Tweedie's formula). ``score(x, t, m, s)`` sees
        both the time (what a user's callable reads) and the marginal there
        (what a built-in score reads)."""
        def denoise(xt, sigma):
            m, s = self.marginal(sigma)
            t = self.time(self.sigma_to_t(sigma))
            x = (m * xt).astype(xt.dtype)
            return (x + s * s * np.asarray(score(x, t, m, s))) / m
        return denoise


def on_chain(name, chain, score, x, noise=None, **options):
    r"""Run the twin of sampler ``name`` on a chain's own grid
    (:class:`DiscreteChain`): from x (in the chain's variables, at index N)
    down to index 0 (sigma = 0), returning x at index 0 (m = 1 there).
    ``score(x, t, m, s)`` as in :meth:`DiscreteChain.denoiser`.

    Two samplers need a word on the last step to sigma = 0. ``dpm_solver``
    is defined for lambda finite; its step to sigma = 0 is the sigma' -> 0
    limit of the first-order step, x~' = D(x~, sigma) (one evaluation).
    ``plms`` takes the chain's middle-time sigmas for its pseudo
    Runge-Kutta warm-up (:meth:`DiscreteChain.mid_sigmas`).
    """
    ch = DiscreteChain(chain)
    sig = ch.sigmas()
    m_top = ch.marginal(sig[0])[0]
    return chain_twin(name, ch)(ch.denoiser(score), np.asarray(x) / m_top, sig, noise, **options)


def chain_twin(name, ch):
    """The twin of ``name`` as a function of (denoise, x~, sigmas, noise,
    **options) on the run of :class:`DiscreteChain` ``ch``, with the two
    chain rules of :func:`on_chain` (usable by :func:`affine_law`)."""
    twin = SAMPLERS[name][0]

    def run(denoise, xt, sigmas, noise=None, **options):
        if name == "plms" and options.get("warmup", "prk") == "prk":
            options = dict(options, sigmas_mid=ch.mid_sigmas())
        if name == "dpm_solver":
            out = twin(denoise, xt, sigmas[:-1], noise, **options)
            return denoise(out, float(sigmas[-2]))
        return twin(denoise, xt, sigmas, noise, **options)
    return run


def affine_law(twin, mu, v, sigmas, mean_in, var_in, kinds, **options):
    r"""The exact output (mean, variance) of a twin on data N(mu, v) (1-D).

    With the affine denoiser of Gaussian data every twin is an affine map
    x_out = A x_in + sum_k B_k z_k + c of its start and its normals. One run
    on a batch of probe rows finds A, B and c: row 0 starts at 0 with all
    normals 0 (c), row 1 at 1 (A + c), and one row per normal (step, which)
    sees that normal as 1 and every other as 0 (B_k + c). Then
    mean = A mean_in + c and var = A^2 var_in + sum B_k^2.
    """
    n = len(sigmas) - 1
    probes = [(i, w) for i in range(n) for w in kinds]
    rows = 2 + len(probes)
    x0 = np.zeros((rows, 1))
    x0[1] = 1.0
    index = {p: 2 + j for j, p in enumerate(probes)}

    def noise(step, which):
        z = np.zeros((rows, 1))
        z[index[(step, which)]] = 1.0
        return z

    out = twin(gaussian_denoiser(mu, v), x0, sigmas, noise, **options)[:, 0]
    c = out[0]
    a = out[1] - c
    b = out[2:] - c
    return a * mean_in + c, a * a * var_in + float(np.sum(b * b))
