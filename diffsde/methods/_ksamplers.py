r"""The samplers of k-diffusion (Crowson's ``k_diffusion/sampling.py``) as step tables.

Each builder writes its sampler in sigma-space (:mod:`._sigma`: x~ = x/m,
sigma = s/m, D the denoiser) with k-diffusion's step structure, its
sigma_up/sigma_down split, its defaults and its rules for a last step to
sigma = 0, vectorized over the steps. Registers: x (0), the denoised value
D (1), the step's normal (2), a stage state (3), a second denoised value
(4), a second normal (5), and from 6 a ring of earlier denoised values or
slopes (multistep methods).

Noise streams (docs/conventions.md): a step's own normal is
``STREAM_STEP`` on the step's interval; the churn noise of ``euler``,
``heun`` and ``dpm_2`` is ``STREAM_EXTRA + 0``; the second normal of
``dpmpp_sde`` (the Brownian bridge between its two increments) is
``STREAM_EXTRA + 1``.
"""
import math

import numpy as np

from .._steptable import STREAM_EXTRA, STREAM_STEP, StepTable
from .._validation import choice, integer, real_scalar
from ._registry import Method, Option
from ._sigma import SigmaGrid, ancestral_split, denoise_rows, eps_rows, noise_rows, update_rows

X, D, Z, S, D2, Z2, RING = 0, 1, 2, 3, 4, 5, 6
#: The stream of the churn noise and of dpmpp_sde's second normal.
STREAM_CHURN = STREAM_EXTRA + 0
STREAM_BRIDGE = STREAM_EXTRA + 1


def _program(*groups):
    return StepTable.program(*[g for g in groups if len(g)])


def _normals(g, steps, register=Z, stream=STREAM_STEP):
    """Normal rows drawing a fresh z into ``register`` on the given steps,
    each on its own noise interval."""
    return noise_rows(register, g.interval[steps], stream, steps)


def _ancestral(g, eta, s_noise):
    r"""The ancestral tail of every step sigma_i -> sigma_{i+1} (k-diffusion's
    ``get_ancestral_step`` and ``x + noise * s_noise * sigma_up``): the split
    of :func:`._sigma.ancestral_split` and the weight of the step's normal,

    .. math:: c_i = s_\text{noise}\, \sigma_{\uparrow,i} \ (0 \text{ on a step to } \sigma = 0),

    Returns (sigma_down, c, the normal rows of the steps with c != 0)."""
    s1 = g.sigma[1:]
    down, up = ancestral_split(g.sigma[:-1], s1, eta)
    c = np.where(s1 > 0, s_noise * up, 0.0)
    return down, c, _normals(g, np.flatnonzero(c != 0))


def _euler(dst, m_out, ratio, m_in, steps, *noise):
    r"""Rows of the Euler step of the Karras ODE from sigma to sigma' =
    ``ratio`` sigma in sigma-space (DDIM's transfer),

    .. math:: \tilde x' = r\, \tilde x + (1 - r) D \ (+ c z),

    from the state x (mean coefficient ``m_in``) and the denoised value in
    register D, into ``dst`` at mean coefficient ``m_out``; ``noise`` an
    optional (c, Z, None) term."""
    return update_rows(dst, m_out, [(ratio, X, m_in), (1 - ratio, D, None), *noise], steps)


def _churn(g, s_churn, s_tmin, s_tmax, s_noise):
    r"""Karras et al. (2022), Algorithm 2, lines 4-6: sigma_hat = (1 + gamma) sigma_i
    with gamma = min(S_churn / n, sqrt 2 - 1) where S_tmin <= sigma_i <= S_tmax,
    reached by adding N(0, s_noise^2 (sigma_hat^2 - sigma_i^2)) to x~.

    Returns the rows of the churned steps and (sigma_hat, t, m, sd) there
    (the grid's own values on the other steps)."""
    n = g.n
    s = g.sigma[:-1]
    gamma = np.where((s >= s_tmin) & (s <= s_tmax), min(s_churn / n, math.sqrt(2.0) - 1.0), 0.0)
    sh = s * (gamma + 1.0)
    th, mh, sdh = g.t[:-1].copy(), g.m[:-1].copy(), g.sd[:-1].copy()
    hot = gamma > 0
    groups = []
    if hot.any():
        th[hot], mh[hot], sdh[hot] = g.at(sh[hot], "the churned noise level sigma_hat = (1 + gamma) sigma "
                                                    "(lower s_tmax or s_churn, or start lower)")
        k = np.flatnonzero(hot)
        groups.append(_normals(g, k, stream=STREAM_CHURN))
        c = s_noise * np.sqrt(sh[k] ** 2 - s[k] ** 2)
        groups.append(update_rows(X, mh[k], [(1.0, X, g.m[k]), (c, Z, None)], k))
    return groups, sh, th, mh, sdh


# ---- first-order and Karras samplers ---------------------------------------------

def euler(view, s_churn=0.0, s_tmin=0.0, s_tmax=math.inf, s_noise=1.0):
    r"""Euler on the Karras ODE after Algorithm 2's churn (Karras et al. 2022;
    k-diffusion ``sample_euler``):

    .. math:: \tilde x_{i+1} = \hat x + (\sigma_{i+1} - \hat\sigma)\,
              \frac{\hat x - D(\hat x, \hat\sigma)}{\hat\sigma}
              = \frac{\sigma_{i+1}}{\hat\sigma} \hat x + \Big(1 - \frac{\sigma_{i+1}}{\hat\sigma}\Big) D.

    Without churn this is DDIM with eta = 0 (Song, Meng & Ermon 2021) and
    DPM-Solver-1 (Lu et al. 2022): the first-order exponential integrator.
    """
    g = SigmaGrid(view, "euler")
    groups, sh, th, mh, sdh = _churn(g, s_churn, s_tmin, s_tmax, s_noise)
    k = g.steps
    return _program(*groups, denoise_rows(D, X, th, mh, sdh, k), _euler(X, g.m[1:], g.sigma[1:] / sh, mh, k))


def euler_ancestral(view, eta=1.0, s_noise=1.0):
    r"""Euler to sigma_down, then fresh noise of std sigma_up (k-diffusion
    ``sample_euler_ancestral``; the split of :func:`._sigma.ancestral_split`):

    .. math:: \tilde x_{i+1} = \frac{\sigma_\downarrow}{\sigma_i}\tilde x_i
              + \Big(1 - \frac{\sigma_\downarrow}{\sigma_i}\Big) D_i + s_\text{noise}\sigma_\uparrow z_i,

    no noise on a step to sigma = 0. This is DDIM with eta in sigma-space
    (Song, Meng & Ermon 2021, eq. 12) when s_noise = 1.
    """
    g = SigmaGrid(view, "euler_ancestral")
    return _ancestral_first_order(g, eta, s_noise)


def _ancestral_first_order(g, eta, s_noise):
    k = g.steps
    down, c, normals = _ancestral(g, eta, s_noise)
    return _program(normals, denoise_rows(D, X, g.t[:-1], g.m[:-1], g.sd[:-1], k),
                    _euler(X, g.m[1:], down / g.sigma[:-1], g.m[:-1], k, (c, Z, None)))


def ddim_sigma(view, eta=0.0):
    r"""DDIM (Song, Meng & Ermon 2021, eq. 12) on any process, in sigma-space:
    the first-order exponential integrator in lambda with data prediction,

    .. math:: \tilde x_{i+1} = \frac{\sigma_\downarrow}{\sigma_i}\tilde x_i
              + \Big(1 - \frac{\sigma_\downarrow}{\sigma_i}\Big) D_i + \sigma_\uparrow z_i,

    (sigma_down, sigma_up) the ancestral split with eta (on VP, DDIM's
    sigma_eta = m_{i+1} sigma_up). eta = 0: Euler in sigma, deterministic.
    """
    return _ancestral_first_order(SigmaGrid(view, "ddim"), eta, 1.0)


def heun(view, s_churn=0.0, s_tmin=0.0, s_tmax=math.inf, s_noise=1.0):
    r"""Karras et al. (2022), Algorithm 2 (k-diffusion ``sample_heun``): the
    churn, then Heun's method on the Karras ODE from sigma_hat to sigma_{i+1},

    .. math:: \tilde x' = \hat x + (\sigma_{i+1} - \hat\sigma) d, \quad
              \tilde x_{i+1} = \hat x + \frac{\sigma_{i+1} - \hat\sigma}{2}\,(d + d'),
              \quad d = \frac{\hat x - D(\hat x, \hat\sigma)}{\hat\sigma},\
              d' = \frac{\tilde x' - D(\tilde x', \sigma_{i+1})}{\sigma_{i+1}};

    Euler on a last step to sigma = 0.
    """
    g = SigmaGrid(view, "heun")
    groups, sh, th, mh, sdh = _churn(g, s_churn, s_tmin, s_tmax, s_noise)
    k = g.steps
    s1, m1 = g.sigma[1:], g.m[1:]
    dt = s1 - sh
    ratio = s1 / sh
    groups.append(denoise_rows(D, X, th, mh, sdh, k))
    last = s1 == 0
    e = np.flatnonzero(last)
    groups.append(_euler(X, m1[e], ratio[e], mh[e], e))
    h = np.flatnonzero(~last)
    m1h, sh_h, dt_h, s1h = m1[h], sh[h], dt[h], s1[h]
    groups.append(_euler(S, m1h, ratio[h], mh[h], h))
    groups.append(denoise_rows(D2, S, g.t[1:][h], m1h, g.sd[1:][h], h))
    half_a, half_b = dt_h / (2 * sh_h), dt_h / (2 * s1h)
    groups.append(update_rows(X, m1h, [(1 + half_a, X, mh[h]), (-half_a, D, None), (half_b, S, m1h),
                                       (-half_b, D2, None)], h))
    return _program(*groups)


def _geometric_mid(a, b):
    return np.exp(0.5 * (np.log(a) + np.log(b)))


def dpm_2(view, s_churn=0.0, s_tmin=0.0, s_tmax=math.inf, s_noise=1.0):
    r"""DPM-Solver-2 in sigma-space (Lu et al. 2022, Algorithm 1 with r_1 = 1/2;
    k-diffusion ``sample_dpm_2``, with Karras et al.'s churn): Euler to the
    midpoint in lambda, sigma_mid = sqrt(sigma_hat sigma_{i+1}), then the full
    step with the slope there,

    .. math:: \tilde x_\text{mid} = \hat x + (\sigma_\text{mid} - \hat\sigma) d, \qquad
              \tilde x_{i+1} = \hat x + (\sigma_{i+1} - \hat\sigma)\,
              \frac{\tilde x_\text{mid} - D(\tilde x_\text{mid}, \sigma_\text{mid})}{\sigma_\text{mid}};

    Euler on a last step to sigma = 0.
    """
    g = SigmaGrid(view, "dpm_2")
    groups, sh, th, mh, sdh = _churn(g, s_churn, s_tmin, s_tmax, s_noise)
    return _program(*_dpm_2_rows(g, groups, sh, th, mh, sdh, g.sigma[1:], np.zeros(g.n), 1.0))


def _dpm_2_rows(g, groups, s, t, m, sd, target, up, s_noise):
    """DPM-Solver-2 steps from (s, t, m, sd) to sigma ``target`` (sigma_{i+1}
    or sigma_down), then noise of std s_noise up; Euler where target = 0."""
    k = g.steps
    m1 = g.m[1:]
    groups.append(denoise_rows(D, X, t, m, sd, k))
    ratio = target / s
    e = np.flatnonzero(target == 0)
    groups.append(_euler(X, m1[e], ratio[e], m[e], e))
    h = np.flatnonzero(target > 0)
    mid = _geometric_mid(s[h], target[h])
    tm, mm, sdm = g.at(mid, "the midpoint sigma_mid = sqrt(sigma sigma_next)") if h.size else (mid,) * 3
    r_mid = mid / s[h]
    groups.append(_normals(g, h[up[h] != 0]))
    groups.append(_euler(S, mm, r_mid, m[h], h))
    groups.append(denoise_rows(D2, S, tm, mm, sdm, h))
    w = (target[h] - s[h]) / mid
    groups.append(update_rows(X, m1[h], [(1.0, X, m[h]), (w, S, mm), (-w, D2, None),
                                         (s_noise * up[h], Z, None)], h))
    return groups


def dpm_2_ancestral(view, eta=1.0, s_noise=1.0):
    r""":func:`dpm_2` to sigma_down (midpoint sqrt(sigma_i sigma_down)), then
    fresh noise of std s_noise sigma_up (k-diffusion ``sample_dpm_2_ancestral``);
    a step whose sigma_down is 0 is Euler to 0 without noise."""
    g = SigmaGrid(view, "dpm_2_ancestral")
    s, s1 = g.sigma[:-1], g.sigma[1:]
    down, up = ancestral_split(s, s1, eta)
    up = np.where(down > 0, up, 0.0)
    return _program(*_dpm_2_rows(g, [], s, g.t[:-1], g.m[:-1], g.sd[:-1], down, up, s_noise))


# ---- linear multistep --------------------------------------------------------------

def lms_weights(sigmas, order):
    r"""Adams-Bashforth weights over variable steps in sigma: for step i of
    order k = min(i + 1, order), row i holds

    .. math:: c_j = \int_{\sigma_i}^{\sigma_{i+1}} \prod_{l \ne j,\, l < k}
              \frac{\tau - \sigma_{i-l}}{\sigma_{i-j} - \sigma_{i-l}}\, d\tau,
              \quad j < k

    (zeros beyond k), by Gauss-Legendre quadrature on the scaled variable
    u = (tau - sigma_i)/h, exact for these polynomials of degree < k."""
    sigmas = np.asarray(sigmas, np.float64)
    n = len(sigmas) - 1
    h = np.diff(sigmas)
    nodes, qw = np.polynomial.legendre.leggauss(max(order, 1))
    u, qw = 0.5 * (nodes + 1), 0.5 * qw
    out = np.zeros((n, order))
    for i in range(n):
        kk = min(i + 1, order)
        un = (sigmas[i - np.arange(kk)] - sigmas[i]) / h[i]
        for j in range(kk):
            basis = np.ones_like(u)
            for l in range(kk):
                if l != j:
                    basis = basis * (u - un[l]) / (un[j] - un[l])
            out[i, j] = h[i] * float(np.dot(qw, basis))
    return out


def lms(view, order=4):
    r"""Linear multistep (Adams-Bashforth) on the Karras ODE over sigma with
    the grid's variable steps (k-diffusion ``sample_lms``; Karras et al. 2022):

    .. math:: \tilde x_{i+1} = \tilde x_i + \sum_{j < k} c_j\, d_{i-j},
              \qquad d = \frac{\tilde x - D}{\sigma} = -\mathrm{sd}\, s(x, t),

    order k = min(i + 1, ``order``) at step i, the weights of :func:`lms_weights`.
    """
    g = SigmaGrid(view, "lms")
    k = g.steps
    c = lms_weights(g.sigma, order)
    ring = RING + k % order
    terms = [(1.0, X, g.m[:-1])]
    for j in range(order):
        # the slope of step i - j, in its ring slot (unused slots have weight 0)
        terms.append((c[:, j], RING + np.maximum(k - j, 0) % order, None))
    return _program(eps_rows(ring, X, g.t[:-1], g.m[:-1], g.sd[:-1], k), update_rows(X, g.m[1:], terms, k))


# ---- DPM-Solver++ (Lu et al. 2022b) ---------------------------------------------------

def dpmpp_2s_ancestral(view, eta=1.0, s_noise=1.0):
    r"""DPM-Solver++(2S) (Lu et al. 2022b, Algorithm 1, r = 1/2) to sigma_down,
    then noise of std s_noise sigma_up (k-diffusion ``sample_dpmpp_2s_ancestral``).
    With h = lambda_down - lambda_i (lambda = -log sigma), sigma_s = sigma_i e^{-h/2}:

    .. math:: u = \frac{\sigma_s}{\sigma_i}\tilde x_i - (e^{-h/2} - 1) D_i, \qquad
              \tilde x_{i+1} = \frac{\sigma_\downarrow}{\sigma_i}\tilde x_i - (e^{-h} - 1) D(u, \sigma_s)
              + s_\text{noise}\sigma_\uparrow z_i;

    Euler when sigma_down = 0; no noise on a step to sigma = 0.
    """
    g = SigmaGrid(view, "dpmpp_2s_ancestral")
    k = g.steps
    s, m, m1 = g.sigma[:-1], g.m[:-1], g.m[1:]
    down, c, normals = _ancestral(g, eta, s_noise)
    groups = [normals, denoise_rows(D, X, g.t[:-1], m, g.sd[:-1], k)]
    e = np.flatnonzero(down == 0)
    groups.append(_euler(X, m1[e], down[e] / s[e], m[e], e, (c[e], Z, None)))
    h = np.flatnonzero(down > 0)
    lam, lam_next = -np.log(s[h]), -np.log(down[h])
    hh = lam_next - lam
    s_mid = np.exp(-(lam + 0.5 * hh))
    tm, mm, sdm = g.at(s_mid, "the midpoint in lambda") if h.size else (s_mid,) * 3
    groups.append(update_rows(S, mm, [(s_mid / s[h], X, m[h]), (-np.expm1(-0.5 * hh), D, None)], h))
    groups.append(denoise_rows(D2, S, tm, mm, sdm, h))
    groups.append(update_rows(X, m1[h], [(down[h] / s[h], X, m[h]), (-np.expm1(-hh), D2, None),
                                         (c[h], Z, None)], h))
    return _program(*groups)


def dpmpp_sde(view, eta=1.0, s_noise=1.0, r=0.5):
    r"""DPM-Solver++ (stochastic), k-diffusion ``sample_dpmpp_sde`` (Lu et al.
    2022b): two ancestral DPM-Solver++ stages from sigma_i, to sigma_s
    (lambda_s = lambda_i + r h) and to sigma_{i+1}, each in its own
    (sigma_down, sigma_up) split, with f = 1/(2r):

    .. math:: u = \frac{\sigma_{\downarrow,s}}{\sigma_i}\tilde x_i
                  - \Big(\frac{\sigma_{\downarrow,s}}{\sigma_i} - 1\Big) D_i + s_\text{noise}\sigma_{\uparrow,s} n_1,
              \quad
              \tilde x_{i+1} = \frac{\sigma_\downarrow}{\sigma_i}\tilde x_i
                  - \Big(\frac{\sigma_\downarrow}{\sigma_i} - 1\Big)\big[(1 - f) D_i + f D(u, \sigma_s)\big]
                  + s_\text{noise}\sigma_\uparrow n_2.

    (n_1, n_2) are the normalized increments W(sigma_s) - W(sigma_i) and
    W(sigma_{i+1}) - W(sigma_i) of one Brownian motion indexed by sigma (the
    law of k-diffusion's Brownian tree for these two queries): with
    a = sigma_i - sigma_s, b = sigma_i - sigma_{i+1}, z_1 on ``STREAM_STEP``
    and z_2 on ``STREAM_EXTRA + 1``, n_1 = z_1 and
    n_2 = (sqrt(a) z_1 + sqrt(b - a) z_2)/sqrt(b). Euler on a last step to sigma = 0.
    """
    g = SigmaGrid(view, "dpmpp_sde")
    k = g.steps
    s, s1, m, m1 = g.sigma[:-1], g.sigma[1:], g.m[:-1], g.m[1:]
    fac = 1.0 / (2.0 * r)
    groups = []
    e = np.flatnonzero(s1 == 0)
    h = np.flatnonzero(s1 > 0)
    lam, lam_next = -np.log(s[h]), -np.log(s1[h])
    hh = lam_next - lam
    s_mid = np.exp(-(lam + hh * r))
    sd1, su1 = ancestral_split(s[h], s_mid, eta)
    sd2, su2 = ancestral_split(s[h], s1[h], eta)
    a, b = s[h] - s_mid, s[h] - s1[h]
    c1 = s_noise * su1
    c2 = s_noise * su2
    noisy = h[(c1 != 0) | (c2 != 0)]
    groups.append(_normals(g, noisy))
    groups.append(_normals(g, noisy, Z2, STREAM_BRIDGE))
    groups.append(denoise_rows(D, X, g.t[:-1], m, g.sd[:-1], k))
    groups.append(_euler(X, m1[e], 0.0, m[e], e))
    tm, mm, sdm = g.at(s_mid, "the stage's noise level sigma_s") if h.size else (s_mid,) * 3
    q1 = sd1 / s[h]
    groups.append(_euler(S, mm, q1, m[h], h, (c1, Z, None)))
    groups.append(denoise_rows(D2, S, tm, mm, sdm, h))
    q2 = sd2 / s[h]
    groups.append(update_rows(X, m1[h], [(q2, X, m[h]), ((1 - q2) * (1 - fac), D, None), ((1 - q2) * fac, D2, None),
                                         (c2 * np.sqrt(a / b), Z, None), (c2 * np.sqrt((b - a) / b), Z2, None)], h))
    return _program(*groups)


def _multistep_d_rows(g, size):
    """Score rows storing D_i in ring slot i mod ``size``; (rows, slot(i - j))."""
    k = g.steps
    rows = denoise_rows(RING + k % size, X, g.t[:-1], g.m[:-1], g.sd[:-1], k)
    return rows, lambda j: RING + np.maximum(k - j, 0) % size


def dpmpp_2m(view):
    r"""DPM-Solver++(2M) (Lu et al. 2022b, Algorithm 2; k-diffusion
    ``sample_dpmpp_2m``): with h_i = lambda_{i+1} - lambda_i and r = h_{i-1}/h_i,

    .. math:: \tilde x_{i+1} = \frac{\sigma_{i+1}}{\sigma_i}\tilde x_i - (e^{-h_i} - 1)
              \Big[\Big(1 + \frac{1}{2r}\Big) D_i - \frac{1}{2r} D_{i-1}\Big];

    first order (D_i alone) on the first step, and x~_{i+1} = D_i on a step
    to sigma = 0.
    """
    g = SigmaGrid(view, "dpmpp_2m")
    k = g.steps
    s, s1, m, m1 = g.sigma[:-1], g.sigma[1:], g.m[:-1], g.m[1:]
    rows, slot = _multistep_d_rows(g, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.log(s) - np.log(s1)
        h_prev = np.r_[np.nan, h[:-1]]
        half_inv_r = np.where(k > 0, 0.5 * h / h_prev, 0.0)
        phi = -np.expm1(-h)
        wx = np.where(s1 > 0, s1 / s, 0.0)
        wd = np.where(s1 > 0, phi * (1 + half_inv_r), 1.0)
        wo = np.where(s1 > 0, -phi * half_inv_r, 0.0)
    return _program(rows, update_rows(X, m1, [(wx, X, m), (wd, slot(0), None), (wo, slot(1), None)], k))


def dpmpp_2m_sde(view, eta=1.0, s_noise=1.0, solver_type="midpoint"):
    r"""DPM-Solver++(2M) SDE (k-diffusion ``sample_dpmpp_2m_sde``; the
    SDE-DPM-Solver++ of Lu et al. 2022b, section 5, with a multistep
    correction). With h = lambda_{i+1} - lambda_i, r = h_{i-1}/h_i and
    :math:`\phi = 1 - e^{-(1 + \eta) h}`:

    .. math:: \tilde x_{i+1} = \frac{\sigma_{i+1}}{\sigma_i} e^{-\eta h}\tilde x_i + \phi D_i
              + c\,\frac{D_i - D_{i-1}}{r} + s_\text{noise}\sigma_{i+1}\sqrt{1 - e^{-2\eta h}}\, z_i,

    c = phi/2 ("midpoint") or c = phi/((1 + eta) h) - 1 ("heun", k-diffusion's
    ``(-h_eta).expm1() / (-h_eta) + 1``); no correction on the first step;
    x~_{i+1} = D_i on a step to sigma = 0.
    """
    g = SigmaGrid(view, "dpmpp_2m_sde")
    k = g.steps
    s, s1, m, m1 = g.sigma[:-1], g.sigma[1:], g.m[:-1], g.m[1:]
    rows, slot = _multistep_d_rows(g, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.log(s) - np.log(s1)
        eh = eta * h
        phi = -np.expm1(-h - eh)
        inv_r = np.where(k > 0, h / np.r_[np.nan, h[:-1]], 0.0)
        c = 0.5 * phi if solver_type == "midpoint" else phi / (-h - eh) + 1
        corr = np.where(k > 0, c * inv_r, 0.0)
        live = s1 > 0
        wx = np.where(live, s1 / s * np.exp(-eh), 0.0)
        wd = np.where(live, phi + corr, 1.0)
        wo = np.where(live, -corr, 0.0)
        wz = np.where(live, s1 * np.sqrt(-np.expm1(-2 * eh)) * s_noise, 0.0) if eta else np.zeros(g.n)
    return _program(_normals(g, np.flatnonzero(wz != 0)), rows,
                    update_rows(X, m1, [(wx, X, m), (wd, slot(0), None), (wo, slot(1), None), (wz, Z, None)], k))


def dpmpp_3m_sde(view, eta=1.0, s_noise=1.0):
    r"""DPM-Solver++(3M) SDE (k-diffusion ``sample_dpmpp_3m_sde``): the
    exponential integrator with the first and second divided differences of
    D over the last three lambdas. With h_eta = (1 + eta) h,
    :math:`\varphi_2 = (e^{-h_\eta} - 1)/h_\eta + 1`, :math:`\varphi_3 = \varphi_2/h_\eta - 1/2`,
    r_0 = h_{i-1}/h, r_1 = h_{i-2}/h,

    .. math:: \tilde x_{i+1} = e^{-h_\eta}\tilde x_i + (1 - e^{-h_\eta}) D_i + \varphi_2 d_1 - \varphi_3 d_2
              + s_\text{noise}\sigma_{i+1}\sqrt{1 - e^{-2\eta h}}\, z_i,

    d_1 = (1 + q) d_{10} - q d_{11}, d_2 = (d_{10} - d_{11})/(r_0 + r_1), q = r_0/(r_0 + r_1),
    d_{10} = (D_i - D_{i-1})/r_0, d_{11} = (D_{i-1} - D_{i-2})/r_1; on the
    second step phi_2 d_{10} alone, on the first neither; x~_{i+1} = D_i on
    a step to sigma = 0.
    """
    g = SigmaGrid(view, "dpmpp_3m_sde")
    k = g.steps
    s, s1, m, m1 = g.sigma[:-1], g.sigma[1:], g.m[:-1], g.m[1:]
    rows, slot = _multistep_d_rows(g, 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.log(s) - np.log(s1)
        he = h * (eta + 1)
        phi2 = np.expm1(-he) / he + 1
        phi3 = phi2 / he - 0.5
        r0 = np.r_[np.nan, h[:-1]] / h
        r1 = np.r_[np.nan, np.nan, h[:-2]][:g.n] / h
        q, p = r0 / (r0 + r1), 1 / (r0 + r1)
        A = phi2 * (1 + q) - phi3 * p
        B = -phi2 * q + phi3 * p
        w0 = np.where(k >= 2, A / r0, np.where(k == 1, phi2 / r0, 0.0))
        w1 = np.where(k >= 2, -A / r0 + B / r1, np.where(k == 1, -phi2 / r0, 0.0))
        w2 = np.where(k >= 2, -B / r1, 0.0)
        live = s1 > 0
        wx = np.where(live, np.exp(-he), 0.0)
        wd = np.where(live, -np.expm1(-he) + w0, 1.0)
        w1, w2 = np.where(live, w1, 0.0), np.where(live, w2, 0.0)
        wz = np.where(live, s1 * np.sqrt(-np.expm1(-2 * h * eta)) * s_noise, 0.0) if eta else np.zeros(g.n)
    return _program(_normals(g, np.flatnonzero(wz != 0)), rows,
                    update_rows(X, m1, [(wx, X, m), (wd, slot(0), None), (w1, slot(1), None),
                                        (w2, slot(2), None), (wz, Z, None)], k))


# ---- options and records -------------------------------------------------------------

def _non_negative(name):
    return lambda v: real_scalar(v, name, "non_negative")


def _s_tmax(value):
    if isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, (bool, np.bool_)) \
            and float(value) == math.inf:
        return math.inf
    return real_scalar(value, "s_tmax", "non_negative")


def _lms_order(value):
    return integer(value, "order", 1, 7)


def _solver_type(value):
    return choice(value, "solver_type", ("midpoint", "heun"))


def _r(value):
    return real_scalar(value, "r", "in_unit_interval")


def _eta(default):
    return Option("eta", default, _non_negative("eta"),
                  f"stochasticity of the ancestral split; default {default:g} (k-diffusion's)")


S_NOISE = Option("s_noise", 1.0, _non_negative("s_noise"), "scale of the added noise (default 1)")
CHURN = (Option("s_churn", 0.0, _non_negative("s_churn"), "Karras et al.'s S_churn: gamma = min(S_churn/n, sqrt 2 - 1)"),
         Option("s_tmin", 0.0, _non_negative("s_tmin"), "churn where sigma >= s_tmin"),
         Option("s_tmax", math.inf, _s_tmax, "churn where sigma <= s_tmax (default inf)"),
         S_NOISE)
ETA1 = _eta(1.0)

_K = "Crowson, k-diffusion"
_STEP = (STREAM_STEP,)
_CHURN_STREAMS = (STREAM_CHURN,)


def _record(name, build, nfe, summary, paper, options=(), order=None, deterministic=True, streams=(),
            weak_order=None):
    return Method(name, "reverse", build, requires=("affine",), kind="ode" if deterministic else "sde",
                  deterministic=deterministic, nfe_per_step=nfe, summary=summary, paper=paper, options=options,
                  order=order if deterministic else None, weak_order=weak_order, streams=streams)


# Weak orders: an ancestral step is its ODE part to sigma_down followed by fresh noise of
# std sigma_up, sigma_down^2 + sigma_up^2 = sigma_next^2: that noise is exactly the forward
# process from sigma_down to sigma_next, so only the ODE part errs in law (dpm_2_ancestral and
# dpmpp_2s_ancestral: order 2, measured 2.0 on every process by tools/sampler_orders.py). The
# SDE solvers measure 2 on Gaussian data, whose score is affine; 1 is what holds in general.
RECORDS = (
    _record("euler", euler, 1, "Euler on the Karras ODE in sigma = s/m, with EDM's churn (= ddim eta 0)",
            f"Karras et al. 2022, Algorithm 2; {_K}", CHURN, order=1.0, streams=_CHURN_STREAMS),
    _record("euler_ancestral", euler_ancestral, 1, "Euler to sigma_down plus noise of std sigma_up",
            f"Song, Meng & Ermon 2021; {_K}", (ETA1, S_NOISE), deterministic=False, streams=_STEP, weak_order=1.0),
    _record("heun", heun, 2, "EDM's Heun (Algorithm 2) in sigma = s/m with churn; Euler to sigma = 0",
            "Karras et al. 2022, Algorithm 2", CHURN, order=2.0, streams=_CHURN_STREAMS),
    _record("dpm_2", dpm_2, 2, "DPM-Solver-2 (r = 1/2 in lambda) in sigma = s/m, with churn",
            f"Lu et al. 2022; {_K}", CHURN, order=2.0, streams=_CHURN_STREAMS),
    _record("dpm_2_ancestral", dpm_2_ancestral, 2, "DPM-Solver-2 to sigma_down plus noise of std sigma_up",
            f"Lu et al. 2022; {_K}", (ETA1, S_NOISE), deterministic=False, streams=_STEP, weak_order=2.0),
    _record("lms", lms, 1, "linear multistep (Adams-Bashforth) in sigma with variable steps",
            f"Karras et al. 2022; {_K}",
            (Option("order", 4, _lms_order, "order of the linear multistep method, 1..7 (default 4)"),),
            order=4.0),
    _record("dpmpp_2s_ancestral", dpmpp_2s_ancestral, 2, "DPM-Solver++(2S) to sigma_down plus noise of std sigma_up",
            f"Lu et al. 2022b; {_K}", (ETA1, S_NOISE), deterministic=False, streams=_STEP, weak_order=2.0),
    _record("dpmpp_sde", dpmpp_sde, 2, "stochastic DPM-Solver++ with two Brownian increments over sigma",
            f"Lu et al. 2022b; {_K}",
            (ETA1, S_NOISE, Option("r", 0.5, _r, "the stage at lambda_i + r h, 0 < r < 1 (default 1/2)")),
            deterministic=False, streams=(STREAM_STEP, STREAM_BRIDGE), weak_order=1.0),
    _record("dpmpp_2m", dpmpp_2m, 1, "DPM-Solver++(2M), multistep data prediction in lambda",
            f"Lu et al. 2022b, Algorithm 2; {_K}", order=2.0),
    _record("dpmpp_2m_sde", dpmpp_2m_sde, 1, "DPM-Solver++(2M) SDE, multistep with noise sigma' sqrt(1 - e^{-2 eta h})",
            f"Lu et al. 2022b; {_K}",
            (ETA1, S_NOISE, Option("solver_type", "midpoint", _solver_type,
                                   "the second-order correction: 'midpoint' (default) or 'heun'")),
            deterministic=False, streams=_STEP, weak_order=1.0),
    _record("dpmpp_3m_sde", dpmpp_3m_sde, 1, "DPM-Solver++(3M) SDE, multistep with second divided differences",
            f"Lu et al. 2022b; {_K}", (ETA1, S_NOISE), deterministic=False, streams=_STEP, weak_order=1.0),
)
