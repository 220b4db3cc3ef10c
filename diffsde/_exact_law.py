r"""The exact output law of a sampler on Gaussian data (re-exported as
:func:`diffsde.analysis.exact_output_law`).

For data :math:`N(\mu, \Sigma)` the exact score of the marginal
:math:`x_t = m x_0 + s z` is affine in x,

.. math:: \nabla \log p_t(x) = (m^2 \Sigma + s^2 I)^{-1} (m \mu - x),

and the process is isotropic, so in the eigenbasis of :math:`\Sigma`
(:math:`\Sigma = U \operatorname{diag}(\lambda) U^T`) every coordinate
evolves on its own with the scalar score :math:`(m \mu_i - y)/(m^2 \lambda_i
+ s^2)`. Every row of a step table other than a langevin row is then affine
in the registers and the draws, so the registers of one coordinate are
jointly Gaussian at every row, and their mean vector and covariance matrix
follow from one pass over the rows.
"""
import math
from dataclasses import dataclass

import numpy as np

from ._steptable import COMBINE, LANGEVIN, NORMAL, SCORE
from ._validation import choice, shown
from .methods import _plan
from .scores import GaussianMixture, LinearScore


@dataclass(frozen=True)
class ExactLaw:
    r"""The Gaussian output law of a sampler and its distance to the target.

    Attributes
    ----------
    mean : ndarray (d,)
    cov : ndarray (d, d)
        The output law N(mean, cov), exact up to float64 rounding.
    kl : float
        KL(output || target), ``inf`` when the target is singular and the
        output is not the same point mass.
    w2 : float
        The 2-Wasserstein distance between output and target.
    target_mean, target_cov : ndarray
        The target: the exact marginal at t_end, N(m mu, m^2 Sigma + s^2 I)
        (the data law when t_end = 0).
    nfe : int
        Score evaluations of one run of the table.
    t_start, t_end : float
        The ends of the run's grid.
    """

    mean: np.ndarray
    cov: np.ndarray
    kl: float
    w2: float
    target_mean: np.ndarray
    target_cov: np.ndarray
    nfe: int
    t_start: float
    t_end: float

    def __repr__(self):
        return (f"ExactLaw(d={self.mean.shape[0]}, nfe={self.nfe}, kl={self.kl:.4g}, w2={self.w2:.4g}, "
                f"t = {self.t_start:g} -> {self.t_end:g})")


def _gaussian(data):
    """(mu, lambdas, vectors) of single-Gaussian data: the mean (d,), the
    eigenvalues of the covariance (d,) and its eigenvectors (d, d) or None
    (the standard basis)."""
    if isinstance(data, LinearScore):
        mean, var = np.broadcast_arrays(np.atleast_1d(data.mean), np.atleast_1d(data.var))
        return mean.astype(np.float64), var.astype(np.float64), None
    if isinstance(data, GaussianMixture):
        if data.K != 1:
            raise ValueError(f"exact_output_law needs Gaussian data (a GaussianMixture of one component or a "
                             f"LinearScore); got a mixture of {data.K} components, whose score is not affine, "
                             "so the output law is not Gaussian: estimate it by sampling (sliced_wasserstein)")
        vectors = None if data.vectors is None else data.vectors[0]
        return data.means[0].copy(), np.array(data.lambdas[0], dtype=np.float64), vectors
    raise TypeError(f"data must be a GaussianMixture of one component or a LinearScore; got "
                    f"{type(data).__name__}")


def _noise_slots(table):
    """For each normal row, the slot of its draw when the same (stream,
    interval) is drawn by more than one row (one normal, so the copies are
    perfectly correlated), else -1; and the number of slots. A slot lives
    from the first draw of its normal to the last."""
    rows = np.flatnonzero(table.kind == NORMAL)
    keys = list(zip(table.stream[rows].tolist(), table.interval[rows].tolist()))
    last, count = {}, {}
    for r, key in zip(rows.tolist(), keys):
        last[key] = r
        count[key] = count.get(key, 0) + 1
    slot_of_row, live, free, n_slots = {}, {}, [], 0
    for r, key in zip(rows.tolist(), keys):
        if count[key] < 2:
            continue
        if key not in live:
            if free:
                live[key] = free.pop()
            else:
                live[key] = n_slots
                n_slots += 1
            slot_of_row[r] = (live[key], True)
        else:
            slot_of_row[r] = (live[key], False)
        if last[key] == r:
            free.append(live.pop(key))
    return slot_of_row, n_slots


def register_moments(table, lambdas, mean_start, var_start):
    r"""Mean (per unit data mean) and covariance of every register after the
    table, for each data variance in ``lambdas`` (U,).

    Per coordinate, with data mean mu and variance lambda, register j holds
    :math:`\mu g_j + (\text{zero-mean Gaussian})`; the recursion tracks
    :math:`g` (U, R) and the covariance :math:`C` (U, R, R):

    - score row ``dst = w0 y + w1 (m mu - y)/V``, :math:`V = m^2 \lambda + sd^2`:
      :math:`a = w_0 - w_1/V`, :math:`g_d = a g_y + w_1 m / V`,
      :math:`C_{d\cdot} = a C_{y\cdot}`, :math:`C_{dd} = a^2 C_{yy}`;
    - normal row: :math:`g_d = 0`, :math:`C_{d\cdot} = 0`, :math:`C_{dd} = 1`
      (a fresh standard normal; a normal drawn again is the same one);
    - combine row ``dst = sum_k w_k r_k``: :math:`g_d = \sum_k w_k g_{r_k}`,
      :math:`C_{d\cdot} = \sum_k w_k C_{r_k \cdot}`,
      :math:`C_{dd} = \sum_k w_k C_{d r_k}` (both from the values before the row).

    ``mean_start`` (U,) is g of the state at the start, ``var_start`` (U,)
    its variance. Returns (g, C).
    """
    kind, dst = table.kind.tolist(), table.dst.tolist()
    bad = [r for r, k in enumerate(kind) if k == LANGEVIN]
    if bad:
        raise ValueError(f"the table has langevin rows (row {bad[0]}, step {int(table.step[bad[0]])}): the "
                         "Langevin corrector's step size depends on the sample's norms, so the output is not "
                         "affine in the draws and its law is not Gaussian; run without a corrector")
    slots, n_slots = _noise_slots(table)
    n_reg = table.n_registers
    size = n_reg + n_slots
    U = lambdas.shape[0]
    g = np.zeros((U, size))
    C = np.zeros((U, size, size))
    g[:, 0] = mean_start
    C[:, 0, 0] = var_start
    src, w = table.src, table.w
    m_col, sd_col = table.m.tolist(), table.sd.tolist()
    for r, k in enumerate(kind):
        d = dst[r]
        if k == SCORE:
            y = int(src[r, 0])
            w0, w1 = float(w[r, 0]), float(w[r, 1])
            m, sd = m_col[r], sd_col[r]
            V = m * m * lambdas + sd * sd
            if np.any(V <= 0):
                raise ValueError(f"row {r} evaluates the score at m = {m:g}, sd = {sd:g}, where the marginal of "
                                 "data with a zero variance is a point mass: its score does not exist")
            a = w0 - w1 / V
            row = a[:, None] * C[:, y, :]
            var = a * a * C[:, y, y]
            mean = a * g[:, y] + w1 * m / V
        elif k == NORMAL:
            slot = slots.get(r)
            if slot is None:
                row, var, mean = np.zeros((U, size)), np.ones(U), np.zeros(U)
            else:
                j = n_reg + slot[0]
                if slot[1]:  # the first draw of a normal drawn again later: keep it in a slot
                    C[:, j, :] = 0.0
                    C[:, :, j] = 0.0
                    C[:, j, j] = 1.0
                    g[:, j] = 0.0
                row, var, mean = C[:, j, :].copy(), np.ones(U), np.zeros(U)
        elif k == COMBINE:
            used = src[r] >= 0
            s, ws = src[r, used], w[r, used]
            row = np.einsum("k,ukr->ur", ws, C[:, s, :])
            var = row[:, s] @ ws
            mean = g[:, s] @ ws
        else:
            raise ValueError(f"row {r} has a row kind ({kind[r]}) the exact law does not know")
        C[:, d, :] = row
        C[:, :, d] = row
        C[:, d, d] = var
        g[:, d] = mean
    return g[:, :n_reg], C[:, :n_reg, :n_reg]


def _small_kl_term(x):
    """x - log(1 + x), accurate for small |x| (a series where the
    subtraction would cancel)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    small = np.abs(x) < 1e-2
    xs = x[small]
    # x^2/2 - x^3/3 + ... - x^9/9: the next term is below 1e-16 of the first
    series = np.zeros_like(xs)
    for n in range(9, 1, -1):
        series = series * xs + (-1.0) ** n / n
    out[small] = series * xs * xs
    out[~small] = x[~small] - np.log1p(x[~small])
    return out


def gaussian_kl_w2(mean_out, var_out, mean_target, var_target):
    r"""KL(N(a, A) || N(b, B)) and W2(N(a, A), N(b, B)) for covariances
    diagonal in one basis (here the data's eigenbasis), per coordinate
    means and variances:

    .. math:: \mathrm{KL} = \frac12 \sum_i \left[\frac{A_i - B_i}{B_i}
              - \log\frac{A_i}{B_i} + \frac{(a_i - b_i)^2}{B_i}\right],
              \qquad
              W_2^2 = \sum_i (a_i - b_i)^2 + (\sqrt{A_i} - \sqrt{B_i})^2

    (the Gaussian KL divergence, Kullback 1959; the Gaussian W2 of Dowson &
    Landau 1982 and Givens & Shortt 1984, whose trace term
    :math:`\operatorname{tr}(A + B - 2 (B^{1/2} A B^{1/2})^{1/2})` is this sum
    when A and B commute). Differences are formed before dividing, so small
    errors keep their relative precision.
    """
    dm2 = (mean_out - mean_target) ** 2
    dv = var_out - var_target
    root = np.sqrt(np.maximum(var_out, 0.0)) + np.sqrt(var_target)
    with np.errstate(divide="ignore", invalid="ignore"):
        w2_terms = dm2 + np.where(root > 0, dv * dv / (root * root), 0.0)
    w2 = math.sqrt(float(np.sum(w2_terms)))
    singular = var_target <= 0
    if np.any(singular & ((var_out > 0) | (dm2 > 0))):
        return math.inf, w2
    if np.any(~singular & (var_out <= 0)):
        return math.inf, w2  # a point mass against a density
    ok = ~singular
    x = dv[ok] / var_target[ok]
    kl = 0.5 * float(np.sum(_small_kl_term(x) + dm2[ok] / var_target[ok]))
    return kl, w2


def exact_output_law(process, data, method=None, ts=None, steps=None, start="marginal", *, t_start=None,
                     t_end=0.0, corrector=None, **options):
    r"""The exact output law of a reverse sampler on Gaussian data, with its
    KL divergence and W2 distance to the target, by a moment recursion
    through the sampler's step table (no sampling, no Monte Carlo error).

    For data :math:`N(\mu, \Sigma)` the exact score is affine in x, so every
    table without langevin rows maps the start state and its normal draws
    affinely to the output, and the output is Gaussian. In the eigenbasis
    of :math:`\Sigma` the coordinates are independent (the noise is
    isotropic and every weight is a scalar), and per coordinate the joint
    law of the table's registers is tracked exactly, row by row: a score row
    :math:`w_0 y + w_1 (m\mu - y)/(m^2\lambda + sd^2)` is affine in its
    source, a normal row starts a fresh unit-variance register (the same
    one when a (stream, interval) is drawn again), and a combine row is a
    linear map, so the mean vector and covariance matrix of the registers
    follow in one pass (:func:`register_moments`; multistep methods carry
    their history in registers, so their law is exact too). The start is

    - ``start="marginal"``: the exact marginal at t_start,
      :math:`N(m_s\mu, m_s^2\Sigma + s_s^2 I)`;
    - ``start="prior"``: :math:`N(0, s_s^2 I)`, the prior ``reverse`` draws.

    The target is the exact marginal at t_end,
    :math:`N(m_e\mu, m_e^2\Sigma + s_e^2 I)` (the data law when t_end = 0 and
    m(0) = 1, s(0) = 0), and

    .. math:: \mathrm{KL} = \frac12 \sum_i \left[\frac{A_i}{B_i} - 1 - \log\frac{A_i}{B_i}
              + \frac{(a_i - b_i)^2}{B_i}\right], \qquad
              W_2^2 = \sum_i (a_i - b_i)^2 + (\sqrt{A_i} - \sqrt{B_i})^2

    over the eigen-coordinates (output N(a, A), target N(b, B); Kullback
    1959; Dowson & Landau 1982, Givens & Shortt 1984, whose general trace
    formula reduces to this sum as both covariances are diagonal in the
    data's eigenbasis).

    Parameters
    ----------
    process : AffineSDE or chain
        As for :func:`diffsde.reverse`.
    data : GaussianMixture of one component, or LinearScore
        The data law N(mu, Sigma) (any covariance kind; a LinearScore is
        N(mean, diag(var))). A mixture of several components raises: its
        score is not affine and the output law is not Gaussian.
    method : str, optional
        A name from ``ds.methods.available(process)``; None: the default.
    ts, steps, t_start, t_end, **options
        The run's grid and the method's options, exactly as for
        :func:`diffsde.reverse` (``steps=N``: the uniform-t grid).
    start : {"marginal", "prior"}
    corrector : None
        A Langevin corrector's step size depends on each sample's norms,
        so its output is not Gaussian: any corrector raises ValueError.

    Returns
    -------
    ExactLaw
        ``mean``, ``cov``, ``kl``, ``w2``, the target's mean and covariance,
        ``nfe``, ``t_start`` and ``t_end``.

    Examples
    --------
    >>> import diffsde as ds
    >>> data = ds.GaussianMixture([1.0], [[1.0, -1.0]], [0.25])
    >>> law = ds.analysis.exact_output_law(ds.VPSDE(), data, "em", steps=100, alpha=0.0)
    >>> bool(law.w2 < 0.05)
    True
    """
    start = choice(start, "start", ("marginal", "prior"))
    mu, lambdas, vectors = _gaussian(data)
    if corrector is not None:
        raise ValueError(f"corrector={shown(corrector)}: the Langevin corrector's step size depends on each "
                         "sample's norms, so the output is not affine in the draws and its law is not Gaussian; "
                         "exact_output_law takes corrector=None only")
    record, opts, _, _ = _plan.reverse_methods(process, method, None, options)
    grid = _plan.reverse_grid(process, steps, t_start, t_end, ts)
    table, view = _plan.reverse_table(process, grid, record, opts)
    m_s, s_s = float(view.m[-1]), float(view.sd[-1])
    m_e, s_e = float(view.m[0]), float(view.sd[0])
    uniq, inverse = np.unique(lambdas, return_inverse=True)
    if start == "marginal":
        g0, v0 = np.full(uniq.shape, m_s), m_s * m_s * uniq + s_s * s_s
    else:
        g0, v0 = np.zeros(uniq.shape), np.full(uniq.shape, s_s * s_s)
    g, C = register_moments(table, uniq, g0, v0)
    gain, var = g[inverse, 0], C[inverse, 0, 0]
    # in the eigenbasis: mean_i = mu_i g(lambda_i), var_i = C(lambda_i)
    mu_eig = mu if vectors is None else vectors.T @ mu
    mean_eig = mu_eig * gain
    target_mean_eig = m_e * mu_eig
    target_var = m_e * m_e * lambdas + s_e * s_e
    kl, w2 = gaussian_kl_w2(mean_eig, var, target_mean_eig, target_var)
    if vectors is None:
        mean, cov = mean_eig, np.diag(var)
        target_mean, target_cov = m_e * mu, np.diag(target_var)
    else:
        mean, cov = vectors @ mean_eig, (vectors * var) @ vectors.T
        target_mean, target_cov = m_e * mu, (vectors * target_var) @ vectors.T
    return ExactLaw(mean=mean, cov=cov, kl=kl, w2=w2, target_mean=target_mean, target_cov=target_cov,
                    nfe=table.nfe, t_start=float(grid[-1]), t_end=float(grid[0]))
