r"""Singlestep DPM-Solver (Lu et al. 2022), noise-prediction form, and the
sigma/lambda view of a grid the exponential integrators share.

Every process of the protocol is x_t = m x_0 + s z; in x~ = x/m it is
x~ = x_0 + sigma z with sigma = s/m and the half-log-SNR
lambda = log(m/s) = -log sigma (derivations 001 and 002). The tables here
act on x itself: an update written for x~ is multiplied through by the new
m, so x_{t'} = (m'/m) x_t + ..., the form of the papers. A score row with
weights ``(0, -s)`` stores the noise prediction eps = -s grad log p_t and
``(1/m, s^2/m)`` the denoised value D = (x + s^2 grad log p_t)/m (Tweedie).

Intermediate stages at a lambda between two grid points need the time
there: ``t_of_lambda`` of the process for an SDE; on a DDPM or SMLD chain,
whose marginals exist on its grid only, the time is interpolated linearly
in lambda = -log sigma between the two chain indices (k-diffusion's rule for
discrete models: a fractional timestep, linear in log sigma), with
m = 1/sqrt(1 + sigma^2) on DDPM (m^2 + s^2 = 1) and m = 1 on SMLD.
"""
from types import SimpleNamespace

import numpy as np

from .._protocol import chain_marginal_at_sigma
from .._validation import shown
from .._steptable import StepTable, combine_rows, score_rows
from ._registry import Method, Option

REG_X = 0


def _is_chain(view):
    return "chain" in view.capabilities


def at_lambda(view, lam, lo, hi):
    """(t, m, s) at half-log-SNRs ``lam`` inside the grid intervals
    (t[lo], t[hi]) (arrays of grid indices, hi = lo + 1)."""
    if not _is_chain(view):
        t = np.asarray(view.sde.t_of_lambda(lam), dtype=np.float64)
        m, s = view.sde.marginal_coefficients(t)
        m = np.broadcast_to(m, t.shape).astype(np.float64)
        return t, m, np.asarray(s, dtype=np.float64)
    lam_lo, lam_hi = _lambda(view)[lo], _lambda(view)[hi]
    frac = (lam - lam_hi) / (lam_lo - lam_hi)
    t = view.t[hi] + frac * (view.t[lo] - view.t[hi])
    return (t,) + _chain_ms(view, lam)


def at_time(view, t, lo, hi):
    """(t, m, s) at times ``t`` inside the grid intervals (t[lo], t[hi])."""
    if not _is_chain(view):
        m, s = view.sde.marginal_coefficients(t)
        return t, np.broadcast_to(m, np.shape(t)).astype(np.float64), np.asarray(s, dtype=np.float64)
    lam = _lambda(view)
    frac = (t - view.t[lo]) / (view.t[hi] - view.t[lo])
    return (t,) + _chain_ms(view, lam[lo] + frac * (lam[hi] - lam[lo]))


def _chain_ms(view, lam):
    return chain_marginal_at_sigma(np.exp(-lam), ddpm=view.log_abar is not None)


def _lambda(view):
    with np.errstate(divide="ignore"):
        return np.log(view.m) - np.log(view.sd)


def sigma_steps(view, method):
    r"""The run's steps in sigma-space: for run step j (grid index k -> k - 1)
    the times, the marginal coefficients (m, s) at both ends, the
    half-log-SNRs and h = lambda' - lambda (infinite on a step to s' = 0).

    ValueError, naming ``method``, when m = 0 on the grid (sigma = s/m
    infinite, e.g. RectifiedFlow at t = 1) or s = 0 before the last point.
    """
    k = view.run_order()
    zero_m = np.flatnonzero(~(view.m > 0))
    if zero_m.size:
        i = int(zero_m[-1])
        raise ValueError(f"method={method!r} works in sigma = s/m, which is infinite at t = {float(view.t[i])!r} "
                         f"(m = {float(view.m[i])!r}); start the run below it (t_start < {float(view.t[i])!r})")
    zero_s = np.flatnonzero(~(view.sd[1:] > 0))
    if zero_s.size:
        i = int(zero_s[0]) + 1
        raise ValueError(f"method={method!r}: the marginal std s is 0 at t = {float(view.t[i])!r} before the "
                         "end of the run; only the last point may have s = 0")
    lam = _lambda(view)
    out = SimpleNamespace(k=k, n=k.size, t0=view.t[k], t1=view.t[k - 1], m0=view.m[k], m1=view.m[k - 1],
                          s0=view.sd[k], s1=view.sd[k - 1], lam0=lam[k], lam1=lam[k - 1])
    out.h = out.lam1 - out.lam0
    out.final = out.s1 == 0
    return out


def dpm_solver(view, order=3):
    r"""Singlestep DPM-Solver-k (Lu et al. 2022, "DPM-Solver: A Fast ODE
    Solver for Diffusion Probabilistic Model Sampling in Around 10 Steps",
    Algorithms 1 and 2), noise prediction eps = -s grad log p, one full
    order-k step of k score evaluations on every interval of the grid.

    With h = lambda' - lambda, stages at lambda + r_i h, (m_i, s_i) there:

    - k = 1 (DDIM): :math:`x' = \frac{m'}{m} x - s' (e^h - 1)\, \epsilon(x, t)`;
    - k = 2, r_1 = 1/2: :math:`u = \frac{m_1}{m} x - s_1 (e^{r_1 h} - 1)\epsilon`,
      :math:`x' = \frac{m'}{m} x - s'(e^h - 1)\epsilon - \frac{s'}{2 r_1}(e^h - 1)(\epsilon(u, t_1) - \epsilon)`;
    - k = 3, r_1 = 1/3, r_2 = 2/3: u_1 as above,
      :math:`u_2 = \frac{m_2}{m} x - s_2(e^{r_2 h} - 1)\epsilon - s_2 \frac{r_2}{r_1}\left(\frac{e^{r_2 h} - 1}{r_2 h} - 1\right)(\epsilon_1 - \epsilon)`,
      :math:`x' = \frac{m'}{m} x - s'(e^h - 1)\epsilon - \frac{s'}{r_2}\left(\frac{e^h - 1}{h} - 1\right)(\epsilon_2 - \epsilon)`.

    A step to s' = 0 (a grid ending at t = 0 where s(0) = 0, or a chain's
    index 0), where lambda' is infinite, is the sigma' -> 0 limit of the
    k = 1 step, the denoising step :math:`x' = \frac{m'}{m}(x + s^2 \nabla\log p_t(x))`
    (one evaluation, first order): the only step that is not of order k.
    Grids from ``ds.grids`` end at t_end > 0 and avoid it.
    """
    st = sigma_steps(view, "dpm_solver")
    steps = np.arange(st.n)
    a = st.m1 / st.m0
    groups = []
    # order 1 and every step to s' = 0: one score row straight into x, with
    # s' (e^h - 1) = m' s/m - s' (m' s^2/m at s' = 0)
    one = st.final if order > 1 else np.ones(st.n, bool)
    if one.any():
        j = steps[one]
        with np.errstate(over="ignore", invalid="ignore"):
            w1 = np.where(st.final[j], st.m1[j] * st.s0[j] ** 2 / st.m0[j],
                          st.s1[j] * np.expm1(st.h[j]) * st.s0[j])
        groups.append(score_rows(REG_X, REG_X, a[j], w1, t=st.t0[j], m=st.m0[j], sd=st.s0[j], step=j))
    j = steps[~one]
    if j.size:
        groups.extend(_higher_order(view, st, j, a[j], order))
    return StepTable.program(*groups)


E0, U, E1 = 1, 2, 3


def _higher_order(view, st, j, a, order):
    h, s1 = st.h[j], st.s1[j]
    lo, hi = st.k[j] - 1, st.k[j]
    rows = [score_rows(E0, REG_X, 0.0, -st.s0[j], t=st.t0[j], m=st.m0[j], sd=st.s0[j], step=j)]
    r1 = 0.5 if order == 2 else 1.0 / 3.0
    ta, ma, sa = at_lambda(view, st.lam0[j] + r1 * h, lo, hi)
    rows.append(combine_rows(U, [(ma / st.m0[j], REG_X), (-sa * np.expm1(r1 * h), E0)], step=j))
    rows.append(score_rows(E1, U, 0.0, -sa, t=ta, m=ma, sd=sa, step=j))
    em1 = np.expm1(h)
    if order == 2:
        c = s1 / (2 * r1) * em1
        rows.append(combine_rows(REG_X, [(a, REG_X), (-s1 * em1 + c, E0), (-c, E1)], step=j))
        return rows
    r2 = 2.0 / 3.0
    tb, mb, sb = at_lambda(view, st.lam0[j] + r2 * h, lo, hi)
    cb = sb * (r2 / r1) * (np.expm1(r2 * h) / (r2 * h) - 1)
    rows.append(combine_rows(U, [(mb / st.m0[j], REG_X), (-sb * np.expm1(r2 * h) + cb, E0), (-cb, E1)], step=j))
    # eps_1 is spent once u_2 is formed: eps_2 takes its register
    rows.append(score_rows(E1, U, 0.0, -sb, t=tb, m=mb, sd=sb, step=j))
    cf = s1 / r2 * (em1 / h - 1)
    rows.append(combine_rows(REG_X, [(a, REG_X), (-s1 * em1 + cf, E0), (-cf, E1)], step=j))
    return rows


def _order(value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value not in (1, 2, 3):
        raise ValueError(f"order of method 'dpm_solver' must be 1, 2 or 3; got {shown(value)}")
    return int(value)


ORDER = Option("order", 3, _order, "dpm_solver: the order k (1, 2 or 3) = score evaluations per step")

DPM_SOLVER = Method(
    "dpm_solver", "reverse", dpm_solver, requires=("affine",), kind="ode", deterministic=True, nfe_per_step=3,
    summary=("singlestep DPM-Solver-k (noise prediction), one full order-k step of k evaluations on every "
             "interval (k = order, default 3; r = 1/2 or 1/3, 2/3 in lambda); a step to s = 0 is the "
             "denoising step"),
    paper="Lu et al. 2022 (DPM-Solver)", options=(ORDER,), order=3.0, streams=())
