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

The chains DDPM and SMLD get the same treatment on their own grid, their
betas and sigmas computed here from their definitions (linear, Riemann and
geometric schedules): ancestral (both variances, with and without noise on the
last step), reverse_diffusion and ddim from the papers, em and ode_heun on
``chain.as_sde()``, and the forward ``chain`` and ``exact`` steps.
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


def twin_ancestral_vp(law, score, x, t, tp, z, variance, silent):
    """Ho et al. (2020), Algorithm 2 (eq. 11 with eps = -sqrt(1 - abar) s) and
    eq. 7's posterior variance; ``silent``: no noise on this step."""
    beta = 1 - abar(law, t) / abar(law, tp)
    v = beta if variance == "beta" else beta * (1 - abar(law, tp)) / (1 - abar(law, t))
    return (x + beta * score(x, t)) / np.sqrt(1 - beta) + (0.0 if silent else np.sqrt(v)) * z


def twin_ancestral_ve(law, score, x, t, tp, z, silent):
    """The posterior of the VE chain, s_{k-1}^2 (s_k^2 - s_{k-1}^2) / s_k^2 with s_k^2 = sigma_k^2 - sigma_0^2."""
    d = law.s(t) ** 2 - law.s(tp) ** 2
    v = law.s(tp) ** 2 * d / law.s(t) ** 2
    return x + d * score(x, t) + (0.0 if silent else np.sqrt(v)) * z


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
    # on an SDE, ancestral runs on the chain with the SDE's marginals on the grid:
    # abar_k = m(t_k)^2 for VP, s_k^2 = sigma(t_k)^2 - sigma_min^2 for VE
    *[("vp", "ancestral", {"variance": v, "last_step_noise": n},
       lambda L, S, x, t, tp, z, last, v=v, n=n: twin_ancestral_vp(L, S, x, t, tp, z, v, last and not n))
      for v in ("beta", "posterior") for n in (False, True)],
    *[("ve", "ancestral", {"last_step_noise": n},
       lambda L, S, x, t, tp, z, last, n=n: twin_ancestral_ve(L, S, x, t, tp, z, last and not n))
      for n in (False, True)],
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


# ---- the chains: DDPM and SMLD on their own grid t_i = i T / N ------------------
#
# Each chain's schedule is computed here from its definition (and checked
# against the chain's public betas / sigmas / sigma0); the twins then use only
# these arrays. em and ode_heun on a chain discretize chain.as_sde(), whose
# schedule is piecewise constant: beta(t) = N beta_i / T (DDPM) and
# g(t)^2 = N (sigma_i^2 - sigma_{i-1}^2) / T (SMLD) on (t_{i-1}, t_i], so at a
# grid point t_i the value is that of the interval to its left, i (and at
# t_0 that of interval 1).

CHAIN_T = 2.0  # a span other than 1, so N / T and T / N cannot be confused


@dataclass
class ChainLaw:
    """A chain's schedule on i = 0..N, from its definition."""

    name: str
    make: object
    betas: np.ndarray = None  # DDPM: beta_1..beta_N
    sigmas: np.ndarray = None  # SMLD: sigma_0..sigma_N (sigma_0 the level of x_0)
    T: float = CHAIN_T

    @property
    def N(self):
        return len(self.betas) if self.betas is not None else len(self.sigmas) - 1

    @property
    def abar(self):
        """abar_i = prod_{j <= i} (1 - beta_j), abar_0 = 1 (Ho et al. 2020, eq. 4)."""
        return np.r_[1.0, np.cumprod(1 - self.betas)]

    def index(self, t):
        return int(round(t * self.N / self.T))

    def marginal_coefficients(self, i):
        """(m_i, s_i): DDPM (sqrt(abar_i), sqrt(1 - abar_i)); SMLD (1, sqrt(sigma_i^2 - sigma_0^2))."""
        if self.betas is not None:
            return np.sqrt(self.abar[i]), np.sqrt(1 - self.abar[i])
        return 1.0, np.sqrt(self.sigmas[i] ** 2 - self.sigmas[0] ** 2)

    def sde_law(self):
        """m, s, f, g^2 of chain.as_sde() at grid times (the value of the interval left of t_i)."""
        left = lambda t: max(self.index(t), 1)  # noqa: E731
        if self.betas is not None:
            rate = lambda t: self.betas[left(t) - 1] * self.N / self.T  # noqa: E731
            return Law(self.name, m=lambda t: self.marginal_coefficients(self.index(t))[0],
                       s=lambda t: self.marginal_coefficients(self.index(t))[1], f=lambda t: -rate(t) / 2, g2=rate, T=self.T)
        sig2 = self.sigmas ** 2
        return Law(self.name, m=lambda t: 1.0, s=lambda t: self.marginal_coefficients(self.index(t))[1], f=lambda t: 0.0,
                   g2=lambda t: (sig2[left(t)] - sig2[left(t) - 1]) * self.N / self.T, T=self.T)


def _linear_betas(n, start, end):
    """Ho et al.'s linear schedule: beta_i = start + (i - 1)/(N - 1) (end - start)."""
    return start + np.arange(n) / (n - 1) * (end - start)


def _geometric_sigmas(n, lo, hi, T):
    """sigma(t_i) = lo (hi/lo)^{t_i / T}, i = 0..N (Song & Ermon 2019's geometric levels)."""
    return lo * (hi / lo) ** (np.arange(n + 1) / n)


CHAINS = {
    "ddpm-linear": ChainLaw("ddpm-linear", lambda: ds.DDPM.linear(STEPS, 0.01, 0.5, T=CHAIN_T),
                            betas=_linear_betas(STEPS, 0.01, 0.5)),
    # from_sde(rule="linear"): beta_min T / N ... beta_max T / N evenly spaced
    "ddpm-vp-linear": ChainLaw("ddpm-vp-linear",
                               lambda: ds.DDPM.from_sde(ds.VPSDE(0.1, 5.0, T=CHAIN_T), STEPS, rule="linear"),
                               betas=_linear_betas(STEPS, 0.1 * CHAIN_T / STEPS, 5.0 * CHAIN_T / STEPS)),
    # from_sde(rule="riemann"): beta_i = beta(t_i) T / N
    "ddpm-vp-riemann": ChainLaw("ddpm-vp-riemann",
                                lambda: ds.DDPM.from_sde(ds.VPSDE(0.1, 5.0, T=CHAIN_T), STEPS),
                                betas=(0.1 + (5.0 - 0.1) * np.arange(1, STEPS + 1) / STEPS) * CHAIN_T / STEPS),
    # SMLD.from_sde: sigma_i = sigma(t_i), so sigma_0 = sigma_min > 0
    "smld-ve": ChainLaw("smld-ve", lambda: ds.SMLD.from_sde(ds.VESDE(0.01, 50.0, T=CHAIN_T), STEPS),
                        sigmas=_geometric_sigmas(STEPS, 0.01, 50.0, CHAIN_T)),
    # clean data: sigma_0 = 0
    "smld-clean": ChainLaw("smld-clean",
                           lambda: ds.SMLD(_geometric_sigmas(STEPS, 0.05, 20.0, CHAIN_T)[1:], 0.0, T=CHAIN_T),
                           sigmas=np.r_[0.0, _geometric_sigmas(STEPS, 0.05, 20.0, CHAIN_T)[1:]]),
}


@pytest.mark.parametrize("name", CHAINS)
def test_chain_schedules_equal_their_definitions(name):
    law = CHAINS[name]
    chain = law.make()
    assert chain.N == STEPS and chain.T == CHAIN_T
    if law.betas is not None:
        np.testing.assert_allclose(chain.betas, law.betas, rtol=1e-14)
    else:
        np.testing.assert_allclose(np.r_[chain.sigma0, chain.sigmas], law.sigmas, rtol=1e-14, atol=0)


def chain_score(law):
    """The exact score of N(DATA_MEAN, DATA_VAR) through the chain to x_i, as a callable of (x, t_i)."""
    def score(x, t):
        m, s = law.marginal_coefficients(law.index(t))
        return -(x - m * DATA_MEAN) / (m * m * DATA_VAR + s * s)
    return score


def twin_chain_ancestral(law, score, x, i, z, variance, noisy_last):
    """Ho et al. (2020), Algorithm 2: x_{i-1} = (x_i + beta_i s) / sqrt(1 - beta_i) + sigma_i z
    (their eps-form with eps = -sqrt(1 - abar_i) s), sigma_i^2 = beta_i or
    beta~_i = beta_i (1 - abar_{i-1}) / (1 - abar_i) (eq. 7), z = 0 at i = 1.
    SMLD: the VE chain's posterior q(x_{i-1} | x_i, x_0) (Song et al. 2021, appendix),
    variance (sigma_{i-1}^2 - sigma_0^2)(sigma_i^2 - sigma_{i-1}^2) / (sigma_i^2 - sigma_0^2)."""
    s = score(x, i * law.T / law.N)
    if law.betas is not None:
        beta, ab = law.betas[i - 1], law.abar
        v = beta if variance == "beta" else beta * (1 - ab[i - 1]) / (1 - ab[i])
        mean = (x + beta * s) / np.sqrt(1 - beta)
    else:
        sig2 = law.sigmas ** 2
        d = sig2[i] - sig2[i - 1]
        v = (sig2[i - 1] - sig2[0]) * d / (sig2[i] - sig2[0])
        mean = x + d * s
    return mean + (np.sqrt(v) if i > 1 or noisy_last else 0.0) * z


def twin_chain_reverse_diffusion(law, score, x, i, z):
    """Song et al. (2021), appendix (reverse-diffusion predictor): DDPM
    (2 - sqrt(1 - beta_i)) x + beta_i s + sqrt(beta_i) z; SMLD x + d s + sqrt(d) z, d = sigma_i^2 - sigma_{i-1}^2."""
    s = score(x, i * law.T / law.N)
    if law.betas is not None:
        beta = law.betas[i - 1]
        return (2 - np.sqrt(1 - beta)) * x + beta * s + np.sqrt(beta) * z
    d = law.sigmas[i] ** 2 - law.sigmas[i - 1] ** 2
    return x + d * s + np.sqrt(d) * z


def twin_chain_ddim(law, score, x, i, z, eta):
    """Song, Meng & Ermon (2021), eq. 12 on the chain's abar, eps = -sqrt(1 - abar_i) s."""
    a_now, a_prev = law.abar[i], law.abar[i - 1]
    eps = -np.sqrt(1 - a_now) * score(x, i * law.T / law.N)
    x0 = (x - np.sqrt(1 - a_now) * eps) / np.sqrt(a_now)
    sigma = eta * np.sqrt((1 - a_prev) / (1 - a_now)) * np.sqrt(1 - a_now / a_prev)
    return np.sqrt(a_prev) * x0 + np.sqrt(1 - a_prev - sigma**2) * eps + sigma * z


DDPMS = [n for n in CHAINS if n.startswith("ddpm")]
SMLDS = [n for n in CHAINS if n.startswith("smld")]
CHAIN_CASES = [
    # (chain, method, options, twin step(law, score, x, i, z))
    *[(c, "ancestral", {"variance": v, "last_step_noise": n},
       lambda L, S, x, i, z, v=v, n=n: twin_chain_ancestral(L, S, x, i, z, v, n))
      for c in DDPMS for v in ("beta", "posterior") for n in (False, True)],
    *[(c, "ancestral", {"last_step_noise": n},
       lambda L, S, x, i, z, n=n: twin_chain_ancestral(L, S, x, i, z, None, n))
      for c in SMLDS for n in (False, True)],
    *[(c, "reverse_diffusion", {}, twin_chain_reverse_diffusion) for c in CHAINS],
    *[(c, "ddim", {"eta": e}, lambda L, S, x, i, z, e=e: twin_chain_ddim(L, S, x, i, z, e))
      for c in DDPMS for e in (0.0, 0.5, 1.0)],
    # em and ode_heun on chain.as_sde(), with the SDE twins above
    *[(c, "em", {"alpha": a},
       lambda L, S, x, i, z, a=a: twin_em(L.sde_law(), S, x, i * L.T / L.N, (i - 1) * L.T / L.N, z, a))
      for c in CHAINS for a in (0.0, 1.0, 2.0)],
    *[(c, "ode_heun", {},
       lambda L, S, x, i, z: twin_heun(L.sde_law(), S, x, i * L.T / L.N, (i - 1) * L.T / L.N, z, i == 1))
      for c in CHAINS],
]


@pytest.mark.parametrize("chain_name, method, options, step", CHAIN_CASES,
                         ids=[f"{c}-{m}-{o}" for c, m, o, _ in CHAIN_CASES])
def test_chain_reverse_equals_twin_from_the_paper(chain_name, method, options, step):
    law = CHAINS[chain_name]
    score = chain_score(law)
    rng = np.random.default_rng(7)
    m_end, s_end = law.marginal_coefficients(law.N)
    x = m_end * DATA_MEAN + np.sqrt(m_end**2 * DATA_VAR + s_end**2) * rng.standard_normal(BATCH)
    noise = rng.standard_normal((STEPS, BATCH))
    expected = x.copy()
    for i in range(law.N, 0, -1):  # step i: x_i -> x_{i-1} on noise interval i - 1
        expected = step(law, score, expected, i, noise[i - 1])
    got = ds.reverse(law.make(), score, x, method=method, noise=noise, **options).x
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", CHAINS)
def test_chain_forward_chain_and_exact_equal_twins(name):
    """chain: Ho et al. (2020) eq. 2, x_i = sqrt(1 - beta_i) x_{i-1} + sqrt(beta_i) z, and
    Song & Ermon (2019), x_i = x_{i-1} + sqrt(sigma_i^2 - sigma_{i-1}^2) z; exact: the
    transition between the marginals, a = m_i / m_{i-1}, c = sqrt(s_i^2 - a^2 s_{i-1}^2)
    (written from the marginals, a different formula with the same value)."""
    law = CHAINS[name]
    rng = np.random.default_rng(9)
    x0 = DATA_MEAN + np.sqrt(DATA_VAR) * rng.standard_normal(BATCH)
    noise = rng.standard_normal((STEPS, BATCH))
    chain_twin, exact_twin = x0.copy(), x0.copy()
    for i in range(1, law.N + 1):  # step i on noise interval i - 1
        if law.betas is not None:
            beta = law.betas[i - 1]
            chain_twin = np.sqrt(1 - beta) * chain_twin + np.sqrt(beta) * noise[i - 1]
        else:
            chain_twin = chain_twin + np.sqrt(law.sigmas[i] ** 2 - law.sigmas[i - 1] ** 2) * noise[i - 1]
        (m0, s0), (m1, s1) = law.marginal_coefficients(i - 1), law.marginal_coefficients(i)
        a = m1 / m0
        exact_twin = a * exact_twin + np.sqrt(s1**2 - a * a * s0**2) * noise[i - 1]
    chain = law.make()
    np.testing.assert_allclose(ds.forward(chain, x0, method="chain", noise=noise).x, chain_twin,
                               rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(ds.forward(chain, x0, method="exact", noise=noise).x, exact_twin,
                               rtol=RTOL, atol=ATOL)


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
    m_full, s_full = ddpm.marginal_coefficients(np.array(keep))
    m_sub, s_sub = sub.marginal_coefficients(np.arange(4))
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


@pytest.mark.parametrize("at_start", [True, False])
def test_langevin_corrector_runs_at_the_paper_times(at_start):
    """A score that records t shows where each corrector sub-step runs: with
    ``corrector_at_start`` (score_sde's PC sampler, Song et al. 2021,
    Algorithm 1) at t_k before the predictor step from t_k, k = N..1; without,
    after each predictor step at the time it landed on, t_{N-1}..t_1
    (never at t_0 = t_end)."""
    law, seen = vp_law(), []

    def score(x, t):
        seen.append(t)
        return gaussian_score(law)(x, t)

    x, _ = start_and_noise(law)
    ds.reverse(ds.VPSDE(0.1, 20.0), score, x, steps=4, method="reverse_diffusion", corrector="langevin",
               n_corrector_steps=2, corrector_at_start=at_start, rng=1)
    grid = np.arange(5) / 4
    if at_start:  # (corrector, corrector, predictor) at each t_k
        expected = [t for k in (4, 3, 2, 1) for t in [grid[k]] * 3]
    else:  # predictor at t_k, then the corrector at the landing time t_{k-1} (not at t_0)
        expected = [grid[4]] + [t for k in (3, 2, 1) for t in [grid[k]] * 3]
    assert seen == pytest.approx(expected, abs=1e-15)
