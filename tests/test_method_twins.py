"""Every sampler against a NumPy twin written from its paper.

The twins below share nothing with the package: each process's mean
coefficient m(t), std s(t), drift coefficient f(t) and squared diffusion
g(t)^2 are written out from their closed forms, and each method's update is
written from its equation, step by step, with a callable score that depends
on t. The package's output on the same noise must agree to rounding, so a
changed coefficient, a score evaluated at the wrong time or a wrong last step
fails here even when it would keep the method's order.

Closed forms (B(t) = beta_min t + (beta_max - beta_min) t^2 / 2):
  VP      m = exp(-B/2), s^2 = 1 - exp(-B),      f = -beta/2, g^2 = beta
  sub-VP  m = exp(-B/2), s = 1 - exp(-B),        f = -beta/2, g^2 = beta (1 - exp(-2B))
  VE      m = 1, s^2 = sigma^2 - sigma_min^2,    f = 0,       g^2 = 2 sigma^2 log(sigma_max/sigma_min)
with sigma(t) = sigma_min (sigma_max/sigma_min)^t (Song et al. 2021, appendix B).
"""
from dataclasses import dataclass

import numpy as np
import pytest

import diffsde as ds

DATA_MEAN, DATA_VAR = 0.7, 0.3 ** 2  # Gaussian data: its score is exact and linear in x
BATCH, STEPS = 64, 12
RTOL, ATOL = 1e-11, 1e-12


@dataclass
class Law:
    """m, s, f, g^2 of a process as functions of t (independent closed forms)."""

    name: str
    m: object
    s: object
    f: object
    g2: object
    T: float = 1.0


def vp_law(beta_min=0.1, beta_max=20.0):
    beta = lambda t: beta_min + (beta_max - beta_min) * t  # noqa: E731
    B = lambda t: beta_min * t + 0.5 * (beta_max - beta_min) * t * t  # noqa: E731
    return Law("vp", m=lambda t: np.exp(-B(t) / 2), s=lambda t: np.sqrt(-np.expm1(-B(t))),
               f=lambda t: -beta(t) / 2, g2=beta)


def subvp_law(beta_min=0.1, beta_max=20.0):
    beta = lambda t: beta_min + (beta_max - beta_min) * t  # noqa: E731
    B = lambda t: beta_min * t + 0.5 * (beta_max - beta_min) * t * t  # noqa: E731
    return Law("subvp", m=lambda t: np.exp(-B(t) / 2), s=lambda t: -np.expm1(-B(t)),
               f=lambda t: -beta(t) / 2, g2=lambda t: beta(t) * -np.expm1(-2 * B(t)))


def ve_law(sigma_min=0.01, sigma_max=50.0):
    sigma = lambda t: sigma_min * (sigma_max / sigma_min) ** t  # noqa: E731
    return Law("ve", m=lambda t: 1.0, s=lambda t: np.sqrt(sigma(t) ** 2 - sigma_min ** 2),
               f=lambda t: 0.0, g2=lambda t: 2 * sigma(t) ** 2 * np.log(sigma_max / sigma_min))


PROCESSES = {
    "vp": (lambda: ds.VPSDE(0.1, 20.0), vp_law()),
    "subvp": (lambda: ds.SubVPSDE(0.1, 20.0), subvp_law()),
    "ve": (lambda: ds.VESDE(0.01, 50.0), ve_law()),
}


def gaussian_score(law):
    """The exact score of N(DATA_MEAN, DATA_VAR) pushed through the process, as a callable of (x, t)."""
    def score(x, t):
        m, s = law.m(t), law.s(t)
        return -(x - m * DATA_MEAN) / (m * m * DATA_VAR + s * s)
    return score


def start_and_noise(law, seed=3):
    rng = np.random.default_rng(seed)
    x = law.s(law.T) * rng.standard_normal(BATCH) + law.m(law.T) * DATA_MEAN
    return x, rng.standard_normal((STEPS, BATCH))


# ---- reverse twins: one step from t_k to t_{k-1}, noise interval k - 1 ---------


def twin_em(law, score, x, t, tp, z, alpha):
    h = t - tp
    return x - h * (law.f(t) * x - 0.5 * (1 + alpha**2) * law.g2(t) * score(x, t)) \
        + alpha * np.sqrt(law.g2(t) * h) * z


def twin_heun(law, score, x, t, tp, z, last):
    """Heun on dx/dt = f x - g^2 s / 2; the last step (to t_end) is Euler."""
    h = t - tp
    D = lambda y, u: law.f(u) * y - 0.5 * law.g2(u) * score(y, u)  # noqa: E731
    d_now = D(x, t)
    if last:
        return x - h * d_now
    return x - 0.5 * h * (d_now + D(x - h * d_now, tp))


def abar(law, t):
    return law.m(t) ** 2


def twin_reverse_diffusion_vp(law, score, x, t, tp, z):
    beta = 1 - abar(law, t) / abar(law, tp)
    return (2 - np.sqrt(1 - beta)) * x + beta * score(x, t) + np.sqrt(beta) * z


def twin_reverse_diffusion_ve(law, score, x, t, tp, z):
    d = law.s(t) ** 2 - law.s(tp) ** 2  # sigma_k^2 - sigma_{k-1}^2
    return x + d * score(x, t) + np.sqrt(d) * z


def twin_ddim(law, score, x, t, tp, z, eta):
    """Song, Meng & Ermon (2021), eq. 12, with eps = -sqrt(1 - abar) * score."""
    a_now, a_prev = abar(law, t), abar(law, tp)
    eps = -np.sqrt(1 - a_now) * score(x, t)
    x0 = (x - np.sqrt(1 - a_now) * eps) / np.sqrt(a_now)
    sigma = eta * np.sqrt((1 - a_prev) / (1 - a_now)) * np.sqrt(1 - a_now / a_prev)
    return np.sqrt(a_prev) * x0 + np.sqrt(1 - a_prev - sigma**2) * eps + sigma * z


def run_twin(law, step, x, noise, grid):
    x = x.copy()
    for k in range(len(grid) - 1, 0, -1):
        x = step(x, grid[k], grid[k - 1], noise[k - 1], k == 1)
    return x


REVERSE_CASES = [
    # (process, method, options, twin step(law, score, x, t, tp, z, last))
    *[(p, "em", {"alpha": a}, lambda L, S, x, t, tp, z, last, a=a: twin_em(L, S, x, t, tp, z, a))
      for p in ("vp", "subvp", "ve") for a in (0.0, 0.5, 1.0, 2.0)],
    *[(p, "ode_heun", {}, lambda L, S, x, t, tp, z, last: twin_heun(L, S, x, t, tp, z, last))
      for p in ("vp", "subvp", "ve")],
    ("vp", "reverse_diffusion", {},
     lambda L, S, x, t, tp, z, last: twin_reverse_diffusion_vp(L, S, x, t, tp, z)),
    ("ve", "reverse_diffusion", {},
     lambda L, S, x, t, tp, z, last: twin_reverse_diffusion_ve(L, S, x, t, tp, z)),
    *[("vp", "ddim", {"eta": e}, lambda L, S, x, t, tp, z, last, e=e: twin_ddim(L, S, x, t, tp, z, e))
      for e in (0.0, 0.5, 1.0)],
]


@pytest.mark.parametrize("t_end", [0.0, 0.05])
@pytest.mark.parametrize("process_name, method, options, step", REVERSE_CASES,
                         ids=[f"{p}-{m}-{o}" for p, m, o, _ in REVERSE_CASES])
def test_reverse_equals_twin_from_the_paper(process_name, method, options, step, t_end):
    make, law = PROCESSES[process_name]
    score = gaussian_score(law)
    x, noise = start_and_noise(law)
    grid = t_end + (law.T - t_end) * np.arange(STEPS + 1) / STEPS
    expected = run_twin(law, lambda y, t, tp, z, last: step(law, score, y, t, tp, z, last), x, noise, grid)
    got = ds.reverse(make(), score, x, steps=STEPS, method=method, t_end=t_end, noise=noise, **options).x
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


def test_heun_corrector_stage_uses_the_landing_time():
    """A score whose value depends on t alone tells t_k from t_{k-1} exactly."""
    law = vp_law()
    seen = []

    def score(x, t):
        seen.append(t)
        return gaussian_score(law)(x, t)

    x, _ = start_and_noise(law)
    ds.reverse(ds.VPSDE(0.1, 20.0), score, x, steps=4, method="ode_heun")
    grid = np.arange(5) / 4
    # predictor at t_k, corrector at t_{k-1} for k = 4, 3, 2; the last step is Euler at t_1
    assert seen == pytest.approx([grid[4], grid[3], grid[3], grid[2], grid[2], grid[1], grid[1]], abs=1e-15)


# ---- forward twins ----------------------------------------------------------


@pytest.mark.parametrize("process_name", ["vp", "subvp", "ve"])
def test_forward_em_and_exact_equal_twins(process_name):
    make, law = PROCESSES[process_name]
    rng = np.random.default_rng(5)
    x0 = DATA_MEAN + np.sqrt(DATA_VAR) * rng.standard_normal(BATCH)
    noise = rng.standard_normal((STEPS, BATCH))
    grid = np.arange(STEPS + 1) / STEPS
    em, exact = x0.copy(), x0.copy()
    for k in range(STEPS):
        t, tn = grid[k], grid[k + 1]
        h = tn - t
        em = em + law.f(t) * em * h + np.sqrt(law.g2(t) * h) * noise[k]
        a = law.m(tn) / law.m(t)
        exact = a * exact + np.sqrt(law.s(tn) ** 2 - a * a * law.s(t) ** 2) * noise[k]
    sde = make()
    np.testing.assert_allclose(ds.forward(sde, x0, steps=STEPS, method="em", noise=noise).x, em,
                               rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(ds.forward(sde, x0, steps=STEPS, method="exact", noise=noise).x, exact,
                               rtol=RTOL, atol=ATOL)


# ---- where the draws come from -----------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_reverse_prior_start_is_the_prior_sample_stream(dtype):
    """reverse(shape=...) starts from stream 1, the stream of prior_sample, not the step noise."""
    vp = ds.VPSDE()
    tr = ds.reverse(vp, gaussian_score(vp_law()), shape=(257,), steps=8, rng=11, save_at=[8],
                    dtype=dtype)
    prior = vp.prior_sample((257,), rng=11, dtype=dtype)
    np.testing.assert_array_equal(tr.xs[0], prior)


def test_respace_rounds_to_the_nearest_index():
    """i_j = round(j N / M): N = 10, M = 3 keeps t_0, t_3, t_7, t_10 (floor would give t_6)."""
    ddpm = ds.DDPM.from_sde(ds.VPSDE(), 10, rule="exact")
    sub = ddpm.respace(3)
    keep = [0, 3, 7, 10]
    m_full, s_full = ddpm.marginal(np.array(keep))
    m_sub, s_sub = sub.marginal(np.arange(4))
    np.testing.assert_allclose(m_sub, m_full, rtol=1e-13)
    np.testing.assert_allclose(s_sub, s_full, rtol=1e-13)
    smld = ds.SMLD.from_sde(ds.VESDE(), 10).respace(3)
    np.testing.assert_allclose(smld.sigmas, ds.VESDE().sigma(np.array(keep[1:]) / 10), rtol=1e-13)


# ---- the Langevin corrector's stationary law ----------------------------------


def _langevin_twin(x, mu, var, snr, r, n_sub, rng):
    """x <- x + e s + sqrt(2 e) z with e = 2 r (snr |z| / |s|)^2 per row (Song et al. 2021, Algorithm 5)."""
    for _ in range(n_sub):
        z = rng.standard_normal(x.shape)
        s = -(x - mu) / var
        e = 2 * r * (snr * np.linalg.norm(z, axis=1) / np.linalg.norm(s, axis=1)) ** 2
        x = x + e[:, None] * s + np.sqrt(2 * e)[:, None] * z
    return x


def test_langevin_corrector_has_the_twin_stationary_law():
    """Many corrector sub-steps at one time leave N(mu, var) with the variance
    inflated by O(e): for a fixed step e the chain is AR(1) with stationary
    variance var / (1 - e / (2 var)). The package and a NumPy twin (independent
    noise) must agree within 5 standard errors (the twin's inflation itself is
    checked loosely: with a random per-row step the fixed-e formula is only a
    guide); a step r q^2 instead of
    2 r q^2 moves the variance by about 1.3%, i.e. more than 6 standard errors."""
    mu, var, snr, r, n_sub = 0.3, 0.5, 0.16, 0.9, 120
    batch, d = 2000, 256
    rng = np.random.default_rng(17)
    x0 = mu + np.sqrt(var) * rng.standard_normal((batch, d))
    table = ds.StepTable.langevin(np.full(n_sub, r), snr, t=0.5, interval=np.arange(n_sub))
    score = lambda x, t: -(x - mu) / var  # noqa: E731
    got = ds.run_steps(x0, table, score=score, rng=4).x
    twin = _langevin_twin(x0, mu, var, snr, r, n_sub, rng)
    e = 2 * r * snr**2 * var  # the typical step: |z|^2 / |s|^2 ~ var
    # the step is random (row norms), so the fixed-e formula holds to O(e) only:
    # the twin must show an inflation between 0 and twice the fixed-e one
    assert var < np.var(twin) < var * (1 + 2 * (1 / (1 - e / (2 * var)) - 1))
    n = got.size
    se_var = np.sqrt(2.0 / n) * var * np.sqrt(2)  # difference of two independent variance estimates
    assert abs(np.var(got) - np.var(twin)) < 5 * se_var
    assert abs(np.mean(got) - np.mean(twin)) < 5 * np.sqrt(2 * var / n)


def test_langevin_sub_steps_equal_the_paper_on_the_same_normals():
    """The corrector on the engine's own normals (stream 2 + m, interval k,
    from the bit-exact Philox/Box-Muller twin), step by step from Song et al.
    (2021), Algorithm 5 with per-row norms: e = 2 r (snr |z| / |s|)^2,
    x <- x + e s + sqrt(2 e) z."""
    from reference_rng import normal

    from diffsde._rng import key_from_rng

    mu, var, snr, batch, d = -0.2, 1.7, 0.16, 24, 16
    r = np.array([0.95, 0.9, 1.0])
    rng = np.random.default_rng(23)
    x = mu + np.sqrt(var) * rng.standard_normal((batch, d))
    intervals = np.array([5, 2, 9])
    tables = [ds.StepTable.langevin(r, snr, t=0.5, interval=intervals, sub_step=m) for m in (0, 1)]
    score = lambda y, t: -(y - mu) / var  # noqa: E731
    got = ds.run_steps(x, ds.StepTable.interleave(*tables), score=score, rng=8).x
    key = int(key_from_rng(8))
    for k, rk in zip(intervals, r):
        for m in (0, 1):
            z = normal(key, 2 + m, int(k), np.arange(batch * d)).reshape(batch, d)
            s = score(x, 0.5)
            e = 2 * rk * (snr * np.linalg.norm(z, axis=1) / np.linalg.norm(s, axis=1)) ** 2
            x = x + e[:, None] * s + np.sqrt(2 * e)[:, None] * z
    np.testing.assert_allclose(got, x, rtol=1e-12, atol=1e-13)
