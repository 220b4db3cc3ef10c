r"""PLMS, the pseudo linear multistep method of PNDM (Liu et al. 2022), as a
register program."""
import numpy as np

from .._validation import choice
from .._steptable import StepTable, combine_rows, score_rows
from ._dpm_solver import REG_X, at_time, sigma_steps
from ._registry import Method, Option

#: Registers: the ring of the last four noise predictions (RING + i mod 4),
#: a stage state and the three inner evaluations of a pseudo Runge-Kutta step.
RING, U, E2, E3, E4 = 1, 5, 6, 7, 8

#: Adams-Bashforth weights of equal steps, newest first, for 2, 3, 4 values.
AB = {2: (3 / 2, -1 / 2), 3: (23 / 12, -16 / 12, 5 / 12), 4: (55 / 24, -59 / 24, 37 / 24, -9 / 24)}


def plms(view, warmup="prk"):
    r"""Pseudo linear multistep (Liu et al. 2022, "Pseudo Numerical Methods
    for Diffusion Models on Manifolds", eqs. (9), (12) and (13)), with the
    noise prediction eps = -s grad log p.

    The transfer part is DDIM's step from (m, s) to (m', s'),
    :math:`\phi(x, \epsilon) = \frac{m'}{m} x + \left(s' - \frac{m'}{m} s\right)\epsilon`
    (in x/m: Euler in sigma = s/m with slope eps); the gradient part is the
    fixed Adams-Bashforth combination of the last four noise predictions,

    .. math:: \epsilon' = \tfrac{1}{24}(55 \epsilon_i - 59 \epsilon_{i-1} + 37 \epsilon_{i-2} - 9 \epsilon_{i-3}),
              \qquad x_{i+1} = \phi(x_i, \epsilon').

    ``warmup="prk"`` (the paper): the first three steps are pseudo
    Runge-Kutta steps, four evaluations at t, at the middle time
    (t + t')/2 (twice) and at t', each stage a transfer from x_i, and
    :math:`\epsilon' = (\epsilon_1 + 2\epsilon_2 + 2\epsilon_3 + \epsilon_4)/6`;
    ``warmup="ab"`` (diffusers' ``skip_prk_steps``): the first step averages
    eps at x_0 and at the DDIM prediction of x_1, then Adams-Bashforth
    weights of orders 2 and 3 until four values exist.

    What the weights mean on this grid: they are Adams-Bashforth-4's for
    equal steps in sigma = s/m, so PLMS is a fourth-order multistep method
    exactly on grids with equal sigma steps (EDM's uniform grid, sigma = t).
    On every other grid the same weights are used unchanged (as diffusers
    does on its equally spaced DDPM timesteps, whose sigma steps are not
    equal): each weight is then off by O(h), a local error O(h^3), and the
    global order is 2. On a chain the middle time of a PRK step lies between
    two chain indices (lambda interpolated linearly in t there).
    """
    st = sigma_steps(view, "plms")
    n = st.n
    i = np.arange(n)
    a1, c1 = st.m1 / st.m0, st.s1 - st.m1 * st.s0 / st.m0
    n_prk = min(3, n) if warmup == "prk" else 0
    ends = n_prk if warmup == "prk" else min(1, n)
    if ends and np.any(st.final[:ends]):
        raise ValueError(f"method='plms' with warmup={warmup!r} evaluates the score at the end of its first "
                         f"{ends} step(s), and this grid of {n} step(s) ends at s = 0 (noise prediction "
                         "undefined there); use more steps or a grid ending at t_end > 0")

    def ring(j):
        return RING + j % 4

    groups = [score_rows(ring(i), REG_X, 0.0, -st.s0, t=st.t0, m=st.m0, sd=st.s0, step=i)]
    if n_prk:
        j = i[:n_prk]
        tm, mm, sm = at_time(view, 0.5 * (st.t0[j] + st.t1[j]), st.k[j] - 1, st.k[j])
        am, cm = mm / st.m0[j], sm - mm * st.s0[j] / st.m0[j]
        for src, dst, a, c, t, m, s in ((ring(j), E2, am, cm, tm, mm, sm), (E2, E3, am, cm, tm, mm, sm),
                                        (E3, E4, a1[j], c1[j], st.t1[j], st.m1[j], st.s1[j])):
            groups.append(combine_rows(U, [(a, REG_X), (c, src)], step=j))
            groups.append(score_rows(dst, U, 0.0, -s, t=t, m=m, sd=s, step=j))
        c = c1[j]
        groups.append(combine_rows(REG_X, [(a1[j], REG_X), (c / 6, ring(j)), (c / 3, E2), (c / 3, E3), (c / 6, E4)],
                                   step=j))
    q = np.minimum(i + 1, 4)
    if warmup == "ab" and n:
        # the first step: the mean of eps at x_0 and at the transfer's x_1
        groups.append(combine_rows(U, [(a1[0], REG_X), (c1[0], ring(0))], step=0))
        groups.append(score_rows(E2, U, 0.0, -st.s1[0], t=st.t1[0], m=st.m1[0], sd=st.s1[0], step=0))
        groups.append(combine_rows(REG_X, [(a1[0], REG_X), (c1[0] / 2, ring(0)), (c1[0] / 2, E2)], step=0))
    rest = i[max(n_prk, 1 if warmup == "ab" else 0):]
    for k in (2, 3, 4):
        j = rest[q[rest] == k]
        if j.size:
            terms = [(a1[j], REG_X)] + [(c1[j] * w, ring(j - l)) for l, w in enumerate(AB[k])]
            groups.append(combine_rows(REG_X, terms, step=j))
    return StepTable.program(*groups)


def _warmup(value):
    return choice(value, "warmup of method 'plms'", ("prk", "ab"))


WARMUP = Option("warmup", "prk", _warmup,
                "plms: 'prk' pseudo Runge-Kutta warm-up (default) or 'ab' (diffusers' skip_prk_steps)", unset="prk")

PLMS = Method(
    "plms", "reverse", plms, requires=("affine",), kind="ode", deterministic=True, nfe_per_step=4,
    summary=("PLMS: DDIM's transfer with the Adams-Bashforth-4 weights of equal steps on the last four noise "
             "predictions; order 4 on equal sigma steps, 2 on other grids; 1 evaluation per step after the "
             "warm-up (4 in each of the 3 pseudo Runge-Kutta steps)"),
    paper="Liu et al. 2022 (PNDM)", options=(WARMUP,), order=2.0, streams=())
