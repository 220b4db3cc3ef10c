"""The sigma-space samplers on DDPM and SMLD chains, against their NumPy
twins run through k-diffusion's ``DiscreteSchedule`` written from its
definition (tests/reference_samplers.DiscreteChain): the chain's own grid and
respaced chains, a built-in score and a user's callable that depends on t
(so the fractional time of an intermediate sigma is checked, not only its
marginal), float64 and float32; and the exact output law on chains against
the twins' affine laws and Monte Carlo."""
import math

import numpy as np
import pytest

import diffsde as ds
import reference_samplers as rs
from conftest import GAUSS_SCORE, MU, V0, VE, engine_noise
from diffsde import _rng

#: A chain on its own grid and respaced chains of each family (each
#: diffusers spacing once); the SMLD chains with sigma_0 > 0 and = 0.
CHAINS = {
    "DDPM.linear(30)": ds.DDPM.linear(30),
    "DDPM.linear(1000).respace(12,leading)": ds.DDPM.linear(1000).respace(12, spacing="leading", steps_offset=1),
    "DDPM.linear(1000).respace(10)": ds.DDPM.linear(1000).respace(10),
    "SMLD.from_sde(VE,20)": ds.SMLD.from_sde(VE, 20),
    "SMLD(500).respace(14,linspace)": ds.SMLD(np.geomspace(0.01, 50.0, 500)).respace(14, spacing="linspace"),
}

#: (method, options): every sampler with every in-step draw made (churn on
#: all but the top steps, eta > 0 for the stochastic ones, dpmpp_sde's
#: Brownian pair) and the options that change the step structure. "s_tmax"
#: "top/2" keeps the churned sigma = (1 + gamma) sigma inside the chain's
#: sigmas (above them the sampler raises: no time there).
CASES = [
    ("euler", dict(s_churn=2.0, s_tmin=0.01, s_tmax="top/2", s_noise=1.003)),
    ("euler", {}),
    ("euler_ancestral", dict(s_noise=0.9)),
    ("heun", dict(s_churn=2.0, s_tmin=0.01, s_tmax="top/2", s_noise=1.003)),
    ("heun", {}),
    ("dpm_2", dict(s_churn=2.0, s_tmin=0.01, s_tmax="top/2", s_noise=1.003)),
    ("dpm_2", {}),
    ("dpm_2_ancestral", dict(eta=0.8)),
    ("lms", {}),
    ("lms", dict(order=3)),
    ("dpmpp_2s_ancestral", {}),
    # eta < 1: at eta = 1 its midpoint sqrt(sigma sigma_down) is sigma_next, a grid level
    ("dpmpp_2s_ancestral", dict(eta=0.5)),
    ("dpmpp_sde", {}),
    ("dpmpp_sde", dict(r=0.4, eta=0.7)),
    ("dpmpp_2m", {}),
    ("dpmpp_2m_sde", {}),
    ("dpmpp_2m_sde", dict(solver_type="heun")),
    ("dpmpp_3m_sde", {}),
    ("dpm_solver", {}),
    ("dpm_solver", dict(order=2)),
    ("unipc", {}),
    ("unipc", dict(order=3, variant="bh1")),
    ("plms", {}),
    ("plms", dict(warmup="ab")),
    ("ddim", {}),
    ("ddim", dict(eta=0.7)),
]
CASE_IDS = [name + "".join(f"-{k}={v}" for k, v in opts.items() if k != "s_tmax") for name, opts in CASES]



def _options(opts, chain):
    top = float(rs.DiscreteChain(chain).levels[-1])
    return {k: (0.5 * top if v == "top/2" else v) for k, v in opts.items()}


def _gauss(x, t, m, s):
    """The exact score of N(MU, V0) at the marginal (m, s): GAUSS_SCORE's twin."""
    return (m * MU - x) / (m * m * V0 + s * s)


class TimeScore:
    """A user's callable score(x, t) that depends on t: the exact Gaussian
    score at the marginal of ``chain.as_sde()`` at t, which equals the
    chain's at its grid times and is smooth between them, like a network
    trained on continuous time. A sampler that evaluates it at the wrong
    fractional time gets another value."""

    def __init__(self, chain):
        self.sde = chain.as_sde()

    def __call__(self, x, t, m=None, s=None):
        mm, ss = self.sde.marginal_coefficients(float(t))
        return (mm * MU - x) / (mm * mm * V0 + ss * ss)


def _start(chain, rows=5, dtype=np.float64):
    m, s = (float(v) for v in chain.marginal_coefficients(chain.N))
    return (m * MU + math.sqrt(m * m * V0 + s * s) * np.linspace(-2, 2, 2 * rows).reshape(rows, 2)).astype(dtype)


@pytest.mark.parametrize("chain_id", list(CHAINS))
@pytest.mark.parametrize("name, opts", CASES, ids=CASE_IDS)
def test_chain_sampler_matches_its_twin(chain_id, name, opts):
    """The C table on the chain and the twin on k-diffusion's discrete
    schedule of the chain, on the same normals: 1e-12 relative in float64
    (the tolerance of the twin tests on SDEs: the table works in x, the
    twin in x/m, ~10 ulps per step), with the built-in score (checks the
    family's marginal at every intermediate sigma) and with a callable that
    depends on t (checks the fractional time, linear in log sigma)."""
    chain = CHAINS[chain_id]
    opts = _options(opts, chain)
    x0 = _start(chain)
    key = _rng.key_from_rng(5)
    for pkg_score, twin_score in ((GAUSS_SCORE, _gauss), (TimeScore(chain), TimeScore(chain))):
        out = ds.reverse(chain, pkg_score, x0, method=name, rng=5, **opts).x
        got = rs.on_chain(name, chain, twin_score, x0, engine_noise(key, chain.N, x0.shape), **opts)
        np.testing.assert_allclose(out, got, rtol=1e-12, atol=1e-12 * np.abs(got).max(),
                                   err_msg=f"score {type(pkg_score).__name__}")


@pytest.mark.parametrize("chain_id", ["DDPM.linear(1000).respace(10)", "SMLD(500).respace(14,linspace)"])
@pytest.mark.parametrize("name, opts", CASES, ids=CASE_IDS)
def test_chain_sampler_matches_its_twin_float32(chain_id, name, opts):
    """float32 runs: within a few float32 ulps per step of the float64 twin
    (2e-5 relative, as on the SDEs)."""
    chain = CHAINS[chain_id]
    opts = _options(opts, chain)
    x0 = _start(chain, rows=8, dtype=np.float32)
    out = ds.reverse(chain, GAUSS_SCORE, x0, method=name, rng=3, **opts).x
    assert out.dtype == np.float32
    got = rs.on_chain(name, chain, _gauss, x0.astype(np.float64),
                      engine_noise(_rng.key_from_rng(3), chain.N, x0.shape, np.float32), **opts)
    np.testing.assert_allclose(out, got, rtol=2e-5, atol=2e-5 * np.abs(got).max())


def test_intermediate_score_times_are_fractional_timesteps_linear_in_log_sigma():
    """dpm_2 on a DDPM chain evaluates a callable at the chain's own times
    t_i = i T / N and at sigma_mid = sqrt(sigma_i sigma_(i-1)), whose
    fractional timestep is exactly halfway (log sigma_mid is the mean of
    the logs): t = (i - 1/2) T / N, and so on every chain."""
    chain = ds.DDPM.linear(1000).respace(10)
    seen = []

    def score(x, t):
        seen.append(float(t))
        return (MU - x) / (V0 + 1.0)
    ds.reverse(chain, score, np.zeros((2, 1)), method="dpm_2")
    T, N = chain.T, chain.N
    # run order: t_N, mid, t_(N-1), mid, ..., t_2, mid, t_1 (the last step is Euler)
    expected = [x for i in range(N, 1, -1) for x in (i * T / N, (i - 0.5) * T / N)] + [T / N]
    np.testing.assert_allclose(seen, expected, rtol=1e-13)
    ch = rs.DiscreteChain(chain)
    np.testing.assert_allclose([ch.time(ch.sigma_to_t(math.sqrt(ch.levels[i] * ch.levels[i - 1])))
                                for i in range(N - 1, 0, -1)], expected[1:-1:2], rtol=1e-13)


def test_discrete_chain_twin_is_the_chain():
    """The twin's levels are the chain's s/m at i = 1..N, sigma_to_t puts
    them at timesteps 0..N-1 and t_to_sigma inverts it between them."""
    for chain in CHAINS.values():
        ch = rs.DiscreteChain(chain)
        m, s = chain.marginal_coefficients(np.arange(1, chain.N + 1))
        np.testing.assert_allclose(ch.levels, s / m, rtol=1e-13)
        np.testing.assert_allclose([ch.sigma_to_t(v) for v in ch.levels], np.arange(chain.N), atol=1e-12)
        for tau in np.linspace(0, chain.N - 1, 23):
            assert ch.sigma_to_t(ch.t_to_sigma(tau)) == pytest.approx(tau, abs=1e-11)


def test_churn_above_the_chain_raises_naming_the_method_and_the_range():
    """A churned sigma above the chain's largest has no time on the chain
    (k-diffusion clamps the timestep there; diffsde says so instead)."""
    chain = CHAINS["DDPM.linear(1000).respace(10)"]
    top = float(rs.DiscreteChain(chain).levels[-1])
    with pytest.raises(ValueError, match=r"method='heun' evaluates the score at the churned noise level.*"
                                         r"outside the chain's sigmas \[[0-9.e-]+, " + f"{top:g}" + r"\]"):
        ds.reverse(chain, GAUSS_SCORE, np.zeros((2, 1)), method="heun", s_churn=1.0)


# ---- the exact output law on chains -------------------------------------------------------

LAW_CHAINS = {k: CHAINS[k] for k in ("DDPM.linear(1000).respace(10)", "SMLD.from_sde(VE,20)")}


@pytest.mark.parametrize("chain_id", list(LAW_CHAINS))
@pytest.mark.parametrize("name, opts", CASES, ids=CASE_IDS)
def test_exact_law_on_a_chain_equals_the_twins_affine_law(chain_id, name, opts):
    """ds.analysis.exact_output_law on the chain (its moment recursion over
    the table) equals the twin's exact affine law on the chain's discrete
    schedule (probe runs, rs.affine_law), from the exact marginal at index
    N, data N(MU, V0): 1e-10 relative (two exact computations, rounding
    apart)."""
    chain = LAW_CHAINS[chain_id]
    opts = _options(opts, chain)
    ch = rs.DiscreteChain(chain)
    sig = ch.sigmas()
    m_top = ch.marginal(sig[0])[0]
    kinds = rs.SAMPLERS[name][2]
    mean, var = rs.affine_law(rs.chain_twin(name, ch), MU, V0, sig, MU, V0 + sig[0] ** 2, kinds, **opts)
    law = ds.analysis.exact_output_law(chain, ds.LinearScore(MU, V0), name, **opts)
    assert law.t_start == chain.T and law.t_end == 0.0 and m_top > 0
    np.testing.assert_allclose(law.mean, [mean], rtol=1e-10)
    np.testing.assert_allclose(law.cov, [[var]], rtol=1e-10)


#: Full-covariance 2-D data (the recursion runs in its eigenbasis).
FULL = ds.GaussianMixture([1.0], [[1.0, -0.5]], [[[0.30, 0.12], [0.12, 0.20]]])
PATHS = 20_000


@pytest.mark.parametrize("chain_id", list(LAW_CHAINS))
def test_exact_law_on_a_chain_matches_monte_carlo(chain_id):
    """Every sampler case on the chain, full-covariance 2-D Gaussian data,
    from the exact marginal at index N: the mean and covariance of 20,000
    paths within 5 standard errors of exact_output_law
    (se(mean_i) = sqrt(C_ii/n), se(C_ij) = sqrt((C_ii C_jj + C_ij^2)/n));
    and the law is a sampler's, not the data's: at these 10 steps the
    exact law of every case on the DDPM chain is measurably off the target."""
    chain = LAW_CHAINS[chain_id]
    m, s = (float(v) for v in chain.marginal_coefficients(chain.N))
    for i, (name, opts) in enumerate(CASES):
        opts = _options(opts, chain)
        law = ds.analysis.exact_output_law(chain, FULL, name, **opts)
        x0 = FULL.sample(PATHS, rng=200 + i)
        x = m * x0 + s * np.random.default_rng(300 + i).standard_normal(x0.shape)
        out = ds.reverse(chain, FULL, x, method=name, rng=17 + i, **opts).x
        diag = np.diag(law.cov)
        mean_err = np.abs(out.mean(axis=0) - law.mean)
        assert np.all(mean_err <= 5 * np.sqrt(diag / PATHS)), (name, opts, mean_err)
        se = np.sqrt((np.outer(diag, diag) + law.cov ** 2) / PATHS)
        assert np.all(np.abs(np.cov(out, rowvar=False) - law.cov) <= 5 * se), (name, opts)
        if chain_id.startswith("DDPM"):
            # 10 steps from sigma = 157: every case's covariance is >= 8 standard errors off the
            # data's (measured), so this check tells the sampler's law from the target
            assert np.any(np.abs(law.cov - law.target_cov) > 5 * se), (name, opts)


# ---- networks on chains: the adapters see the samplers' marginal between grid times -------

def _exact_eps(chain):
    """eps(x, t): the exact noise prediction of N(MU, V0) on the chain at the
    chain time t, fractional timesteps included, by the twin's schedule
    (tau = t N / T - 1, sigma = t_to_sigma(tau), the family's (m, s))."""
    ch = rs.DiscreteChain(chain)

    def eps(x, t):
        m, s = ch.marginal(ch.t_to_sigma(max(float(t) * chain.N / chain.T - 1.0, 0.0)))
        return -s * (m * MU - np.asarray(x)) / (m * m * V0 + s * s)
    return eps


def _kdiffusion_denoiser(xt, sigma):
    """k-diffusion's D(x/m, sigma) of N(MU, V0): MU + V0 (x~ - MU)/(V0 + sigma^2)."""
    sigma = np.asarray(sigma)[:, None]
    return MU + V0 / (V0 + sigma * sigma) * (xt - MU)


@pytest.mark.parametrize("chain_id", ["DDPM.linear(1000).respace(10)", "SMLD(500).respace(14,linspace)"])
def test_prediction_adapters_on_a_chain_match_the_exact_score_between_grid_times(chain_id):
    """A network's prediction turned into a score on a chain (score_from_eps,
    score_from_x0, network_score with k-diffusion's D(x/m, sigma)) is
    evaluated by the samplers at fractional times; the adapters convert with
    the marginal the sampler uses there (log sigma linear in t, the family's
    m and s), so exact predictions give the exact score's run to rounding
    (1e-11). Converting with the nearest grid index's s instead is off by
    O(step) (1e-2 and 1.9 relative here, measured)."""
    chain = CHAINS[chain_id]
    eps = _exact_eps(chain)
    ch = rs.DiscreteChain(chain)

    def x0_fn(x, t):
        m, s = ch.marginal(ch.t_to_sigma(max(float(t) * chain.N / chain.T - 1.0, 0.0)))
        return (x - s * eps(x, t)) / m
    adapters = {"score_from_eps": ds.score_from_eps(eps, chain), "score_from_x0": ds.score_from_x0(x0_fn, chain),
                "network_score(x0, sigma)": ds.network_score(_kdiffusion_denoiser, chain, prediction="x0",
                                                             time="sigma"),
                "network_score(eps, t)": ds.network_score(lambda x, t: eps(x, t[0]), chain, prediction="eps")}
    x0 = _start(chain)
    for name, opts in [("dpm_2", {}), ("heun", CASES[3][1]), ("dpmpp_2s_ancestral", dict(eta=0.5)),
                       ("dpmpp_sde", {}), ("dpm_solver", {}), ("plms", {})]:
        opts = _options(opts, chain)
        ref = ds.reverse(chain, GAUSS_SCORE, x0, method=name, rng=9, **opts).x
        for label, score in adapters.items():
            out = ds.reverse(chain, score, x0, method=name, rng=9, **opts).x
            np.testing.assert_allclose(out, ref, rtol=1e-11, atol=1e-11 * np.abs(ref).max(), err_msg=f"{name} {label}")


def test_chain_coefficients_between_grid_times():
    """_protocol.chain_coefficients, what the adapters and data.score(chain)
    use at a time t: index i's (m, s) at t_i; halfway between two indices
    (i >= 1) sigma = sqrt(sigma_i sigma_(i+1)) (log sigma linear in t) with
    the family's marginal (DDPM m^2 + s^2 = 1, SMLD m = 1); below t_1 the
    nearest index; and data.score(chain) agrees with the built-in score there."""
    from diffsde._protocol import chain_coefficients
    for chain in (CHAINS["DDPM.linear(1000).respace(10)"], CHAINS["SMLD.from_sde(VE,20)"]):
        N, T = chain.N, chain.T
        m, s = chain.marginal_coefficients(np.arange(N + 1))
        for i in range(N + 1):
            assert chain_coefficients(chain, i * T / N) == (float(m[i]), float(s[i]))
        for i in range(1, N):
            mm, ss = chain_coefficients(chain, (i + 0.5) * T / N)
            sigma = math.sqrt(s[i] / m[i] * s[i + 1] / m[i + 1])
            assert ss / mm == pytest.approx(sigma, rel=1e-13)
            assert (mm * mm + ss * ss if "ddpm_chain" in chain.capabilities else mm) == pytest.approx(1.0, rel=1e-14)
        assert chain_coefficients(chain, 0.4 * T / N) == (float(m[0]), float(s[0]))
        assert chain_coefficients(chain, 0.6 * T / N) == (float(m[1]), float(s[1]))
        x = np.linspace(-1, 1, 6).reshape(3, 2)
        t = 2.3 * T / N
        mm, ss = chain_coefficients(chain, t)
        np.testing.assert_allclose(ds.GaussianMixture([1.0], [[MU, MU]], [[V0, V0]]).score(chain)(x, t),
                                   _gauss(x, t, mm, ss), rtol=1e-13)
