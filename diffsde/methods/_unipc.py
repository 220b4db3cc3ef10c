r"""UniPC (Zhao et al. 2023) with the defaults of diffusers'
UniPCMultistepScheduler, as a register program."""
import numpy as np

from .._validation import choice, shown
from .._steptable import StepTable, combine_rows, score_rows
from ._dpm_solver import REG_X, sigma_steps
from ._registry import Method, Option

#: The corrected state of the previous step (the predictor's start), and
#: the first register of the ring of denoised values D_i (register
#: RING + i mod (order + 1): the corrector of order 3 reads four of them).
REG_PREV, RING = 1, 2


def _b_vector(hh, variant, p):
    r"""UniPC's right-hand side b_k = k! phi_{k+1}(hh) / B(h), k = 1..p, with
    hh = -h (data prediction) and B(h) = e^{hh} - 1 ("bh2") or hh ("bh1");
    also h phi_1 = e^{hh} - 1 and B(h). (Zhao et al. 2023, Algorithm 2.)"""
    h_phi_1 = np.expm1(hh)
    b_h = hh if variant == "bh1" else h_phi_1
    h_phi_k = h_phi_1 / hh - 1
    fact, out = 1, []
    for k in range(1, p + 1):
        out.append(h_phi_k * fact / b_h)
        fact *= k + 1
        h_phi_k = h_phi_k / hh - 1 / fact
    return np.stack(out, axis=-1), h_phi_1, b_h


def _solve(rks, b):
    """rho of sum_j rks_j^(k-1) rho_j = b_k, k = 1..p, one system per step."""
    p = rks.shape[1]
    R = rks[:, None, :] ** np.arange(p)[None, :, None]
    return np.linalg.solve(R, b[:, :, None])[:, :, 0]


def unipc(view, order=2, variant="bh2"):
    r"""UniPC (Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector
    Framework for Fast Sampling of Diffusion Models", Algorithms 2 and 3)
    with data prediction D = (x + s^2 grad log p)/m, as diffusers'
    ``UniPCMultistepScheduler`` runs it by default: B(h) = e^{-h} - 1
    ("bh2"; "bh1": B(h) = -h), order p = 2 (option 3), order min(p, i + 1)
    after the start and min(p, n - i) on the last steps (diffusers'
    ``lower_order_final``, always on here: a multistep step to s = 0 of
    order above 1 is undefined, r_k = 0 there).

    Predictor UniP-p from (m, s) to (m', s'), h = lambda' - lambda,
    r_k = (lambda_{i-k} - lambda_i)/h:

    .. math:: x^p_{i+1} = \frac{s'}{s} x_i - m'(e^{-h} - 1) D_i
              - m' B(h) \sum_{k=1}^{p-1} \rho^p_k \frac{D_{i-k} - D_i}{r_k}

    (rho^p = 1/2 for p = 2, else the first p - 1 equations of
    R rho = b). Corrector UniC-p after every predictor step but the last,
    with D_{i+1} = D(x^p_{i+1}) (the evaluation the next predictor reuses, so
    one evaluation per step):

    .. math:: x_{i+1} = \frac{s'}{s} x_i - m'(e^{-h} - 1) D_i
              - m' B(h)\left[\sum_{k=1}^{p-1} \rho^c_k \frac{D_{i-k} - D_i}{r_k} + \rho^c_p (D_{i+1} - D_i)\right]

    (rho^c = 1/2 for p = 1, else R rho^c = b). The state register after step
    i holds the predicted x^p_{i+1} (diffusers' ``prev_sample``); its
    correction happens in step i + 1. A step to s' = 0 must be first order,
    x' = m' D_i (it is: the last step is first order). UniC raises the order of
    UniP-p to p + 1 (Zhao et al., Theorem 3.1); the last step is first order
    without a corrector, which caps the measured order at 2 when the other
    errors are far smaller.
    """
    st = sigma_steps(view, "unipc")
    n = st.n
    i = np.arange(n)
    lam = np.r_[st.lam0, st.lam1[-1:]]
    p = np.minimum(np.minimum(order, n - i), i + 1)
    ring = order + 1

    def reg(j):
        return RING + j % ring

    groups = [score_rows(reg(i), REG_X, 1.0 / st.m0, st.s0 ** 2 / st.m0, t=st.t0, m=st.m0, sd=st.s0, step=i),
              combine_rows(REG_PREV, [(1.0, REG_X)], step=0)]
    # -- UniC at steps 1..n-1, for the predictor step (i - 1 -> i) of order p_{i-1}
    c = i[1:]
    if c.size:
        groups.append(_corrector(c, p[c - 1], lam, st, reg, variant))
    j = i[~st.final]
    if j.size:
        groups.append(_predictor(j, p[j], lam, st, reg, variant))
    if st.final[-1]:
        groups.append(combine_rows(REG_X, [(st.m1[-1], reg(n - 1))], step=n - 1))
    return StepTable.program(*groups)


def _history(j, p, lam, h, most):
    """r_k = (lambda_{j-k} - lambda_j)/h for k = 1..most (0 where k >= p)."""
    rks = np.zeros((j.size, most))
    for k in range(1, most + 1):
        use = k < p
        rks[use, k - 1] = (lam[j[use] - k] - lam[j[use]]) / h[use]
    return rks


def _predictor(j, p, lam, st, reg, variant):
    h = lam[j + 1] - lam[j]
    m1 = st.m1[j]
    b, h_phi_1, b_h = _b_vector(-h, variant, 3)
    rks = _history(j, p, lam, h, 2)
    rho = np.zeros((j.size, 2))
    rho[p == 2, 0] = 0.5
    three = p == 3
    if three.any():
        rho[three] = _solve(rks[three], b[three, :2])
    with np.errstate(divide="ignore", invalid="ignore"):
        w_hist = np.where(rks != 0, -m1[:, None] * b_h[:, None] * rho / rks, 0.0)
    w_now = -m1 * h_phi_1 - w_hist.sum(axis=1)
    terms = [(st.s1[j] / st.s0[j], REG_PREV), (w_now, reg(j))]
    terms += [(w_hist[:, k - 1], np.where(k < p, reg(j - k), -1)) for k in (1, 2)]
    return combine_rows(REG_X, terms, step=j)


def _corrector(c, p, lam, st, reg, variant):
    """UniC at run steps ``c`` for the steps c - 1 -> c (orders ``p``)."""
    j = c - 1
    h = lam[c] - lam[j]
    m = st.m0[c]
    b, h_phi_1, b_h = _b_vector(-h, variant, 3)
    rks = _history(j, p, lam, h, 2)
    rho = np.zeros((c.size, 3))  # rho_1, rho_2 of the history, rho_p of D_{c}
    rho[p == 1, 2] = 0.5
    for q in (2, 3):
        sel = p == q
        if sel.any():
            sol = _solve(np.c_[rks[sel, :q - 1], np.ones(sel.sum())], b[sel, :q])
            rho[np.ix_(sel, range(q - 1))] = sol[:, :-1]
            rho[sel, 2] = sol[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        w_hist = np.where(rks != 0, -m[:, None] * b_h[:, None] * rho[:, :2] / rks, 0.0)
    w_new = -m * b_h * rho[:, 2]
    w_last = -m * h_phi_1 - w_hist.sum(axis=1) - w_new
    terms = [(st.s0[c] / st.s0[j], REG_PREV), (w_last, reg(j))]
    terms += [(w_hist[:, k - 1], np.where(k < p, reg(j - k), -1)) for k in (1, 2)]
    terms.append((w_new, reg(c)))
    return combine_rows(REG_PREV, terms, step=c)


def _order(value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value not in (1, 2, 3):
        raise ValueError(f"order of method 'unipc' must be 1, 2 or 3; got {shown(value)}")
    return int(value)


def _variant(value):
    return choice(value, "variant of method 'unipc'", ("bh2", "bh1"))


ORDER = Option("order", 2, _order, "unipc: the order p of UniP (1, 2 or 3; default 2)")
VARIANT = Option("variant", "bh2", _variant,
                 "unipc: B(h) = e^{-h} - 1 ('bh2', default) or -h ('bh1')", unset="bh2")

UNIPC = Method(
    "unipc", "reverse", unipc, requires=("affine",), kind="ode", deterministic=True, nfe_per_step=1,
    summary=("UniPC: UniP-p predictor (data prediction, multistep in lambda) with the UniC corrector after "
             "every step but the last; p = order (default 2), B(h) from variant; diffusers' defaults"),
    paper="Zhao et al. 2023 (UniPC)", options=(ORDER, VARIANT), order=3.0, streams=())
