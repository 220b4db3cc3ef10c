"""The NumPy twins of the sigma-space samplers (tests/reference_samplers.py):
their identities, their agreement with the package's own methods, their
orders against the closed-form probability-flow map of Gaussian data, and
the laws of the stochastic ones (exact affine law against Monte Carlo, and
its weak convergence to the data law)."""
import math
import warnings

import numpy as np
import pytest
from scipy import integrate

import diffsde as ds
import reference_samplers as rs
from conftest import GAUSS_SCORE, MU, V0, VP

EDM = ds.EDM()
#: A path given only by m and s (numerical derivatives and inverses).
OU = ds.AffineSDE(lambda t: np.exp(-t), lambda t: np.sqrt(-np.expm1(-2 * t)), T=3.0, name="OU")
GAUSS_D = rs.gaussian_denoiser(MU, V0)


def exact_score(process):
    """The score of N(MU, V0) under ``process`` as a callable score(x, t)."""
    return lambda x, t: GAUSS_SCORE.evaluate(x, *process.marginal_coefficients(t))


def supply(shape, seed):
    """noise(step, which): fresh standard normals per (step, which), from a seeded Generator."""
    gen, cache = np.random.default_rng(seed), {}

    def noise(step, which):
        if (step, which) not in cache:
            cache[(step, which)] = gen.standard_normal(shape)
        return cache[(step, which)]
    return noise


def _start(process, t_start, rows=7):
    """Starting states across the marginal at t_start (-3 to 3 standard deviations)."""
    m, s = process.marginal_coefficients(t_start)
    return m * MU + math.sqrt(m * m * V0 + s * s) * np.linspace(-3, 3, rows)[:, None]


# -- helpers: sigma-space and the Gaussian closed forms -----------------------

@pytest.mark.parametrize("process", [VP, EDM, OU], ids=["VP", "EDM", "AffineSDE"])
def test_denoiser_from_the_exact_score_is_the_gaussian_denoiser(process):
    """Tweedie: (x + s^2 score)/m at t(sigma) is E[x0 | x/m] = mu + v (x~ - mu)/(v + sigma^2)."""
    D = rs.denoiser_from_score(exact_score(process), process)
    xt = np.linspace(-4, 4, 9)[:, None]
    for t in (0.3, 0.05 * process.T, 0.9 * process.T):
        sigma = float(process.sigma_of_t(t))
        np.testing.assert_allclose(D(xt, sigma), GAUSS_D(xt, sigma), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("process", [VP, EDM], ids=["VP", "EDM"])
def test_gaussian_flow_map_solves_the_probability_flow_ode(process):
    """dx/dt = f x - g^2 score / 2 with the exact score, integrated by SciPy."""
    t0, t1 = process.default_t_start, process.default_t_end
    x0 = _start(process, t0, 5)[:, 0]

    def rhs(t, x):
        f, g = process.drift_coefficient(t), process.diffusion(t)
        return f * x - 0.5 * g * g * exact_score(process)(x, t)

    sol = integrate.solve_ivp(rhs, (t0, t1), x0, method="DOP853", rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rs.gaussian_flow_map(process, MU, V0, x0, t0, t1), sol.y[:, -1], rtol=1e-8, atol=1e-9)
    sig = process.sigma_of_t(np.array([t0, t1]))
    m = process.marginal_coefficients(np.array([t0, t1]))[0]
    np.testing.assert_allclose(m[1] * rs.gaussian_flow_map_sigma(MU, V0, x0 / m[0], sig[0], sig[1]), sol.y[:, -1],
                               rtol=1e-8, atol=1e-9)


# -- identities between twins and with the package's methods -------------------

def test_euler_ddim_and_dpm_solver_1_are_one_map():
    sig = ds.grids.karras(EDM, 20)
    x = _start(EDM, sig[0])
    a = rs.euler(GAUSS_D, x, sig)
    np.testing.assert_allclose(rs.ddim(GAUSS_D, x, sig), a, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rs.dpm_solver(GAUSS_D, x, sig, order=1), a, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rs.lms(GAUSS_D, x, sig, order=1), a, rtol=1e-12, atol=1e-12)


def test_dpm_2_is_dpm_solver_2_with_r_one_half_in_lambda():
    sig = rs.sigma_space(VP, ds.grids.logsnr(VP, 15))[0]
    x = _start(VP, 1.0) / VP.marginal_coefficients(1.0)[0]
    np.testing.assert_allclose(rs.dpm_2(GAUSS_D, x, sig), rs.dpm_solver(GAUSS_D, x, sig, order=2), rtol=1e-11)


@pytest.mark.parametrize("eta", [0.3, 1.0])
def test_ddim_with_eta_is_euler_ancestral_on_the_same_noise(eta):
    sig = np.r_[ds.grids.karras(EDM, 12), 0.0]
    x = _start(EDM, sig[0])
    a = rs.euler_ancestral(GAUSS_D, x, sig, supply(x.shape, 1), eta=eta)
    np.testing.assert_allclose(rs.ddim(GAUSS_D, x, sig, supply(x.shape, 1), eta=eta), a, rtol=1e-11, atol=1e-12)


def test_dpmpp_2m_sde_without_noise_is_dpmpp_2m():
    sig = np.r_[ds.grids.karras(EDM, 12), 0.0]
    x = _start(EDM, sig[0])
    np.testing.assert_allclose(rs.dpmpp_2m_sde(GAUSS_D, x, sig, eta=0.0), rs.dpmpp_2m(GAUSS_D, x, sig),
                               rtol=1e-11, atol=1e-12)


def test_ddim_twin_is_the_package_ddim_on_vp():
    """sigma-space DDIM, through x~ = x/m and Tweedie's denoiser, is diffsde's chain DDIM."""
    grid = ds.grids.logsnr(VP, 25)
    sig, m = rs.sigma_space(VP, grid)
    x = _start(VP, grid[0])
    out = m[-1] * rs.ddim(rs.denoiser_from_score(exact_score(VP), VP), x / m[0], sig)
    ref = ds.reverse(VP, GAUSS_SCORE, x, ts=grid, method="ddim").x
    np.testing.assert_allclose(out, ref, rtol=1e-10)


def test_ddim_eta_one_twin_is_the_package_posterior_ancestral_on_vp():
    """DDIM with eta = 1 is DDPM's ancestral step with the posterior variance (Song et al.
    2021, DDIM, section 4.1), on identical normals: twin step i is the package's interval n - 1 - i."""
    grid = ds.grids.logsnr(VP, 25)
    n = len(grid) - 1
    sig, m = rs.sigma_space(VP, grid)
    x = _start(VP, grid[0])
    z = np.random.default_rng(3).standard_normal((n,) + x.shape)
    out = m[-1] * rs.ddim(rs.denoiser_from_score(exact_score(VP), VP), x / m[0], sig,
                          lambda i, which: z[n - 1 - i], eta=1.0)
    ref = ds.reverse(VP, GAUSS_SCORE, x, ts=grid, method="ancestral", variance="posterior", noise=z,
                     last_step_noise=True).x
    np.testing.assert_allclose(out, ref, rtol=1e-9)


def test_ancestral_split_at_eta_one_is_the_ddpm_posterior_std():
    """sigma_up m' = sqrt(beta_tilde), beta_tilde = (1 - abar') / (1 - abar) (1 - abar / abar') on VP."""
    t = np.array([0.6, 0.4])
    (m, mp), (s, sp) = VP.marginal_coefficients(t)
    down, up = rs.ancestral_split(s / m, sp / mp, 1.0)
    ab, abp = m * m, mp * mp
    assert up * mp == pytest.approx(math.sqrt((1 - abp) / (1 - ab) * (1 - ab / abp)), rel=1e-13)
    assert down ** 2 + up ** 2 == pytest.approx((sp / mp) ** 2, rel=1e-13)


def test_lms_coefficients_are_the_integrals_of_the_lagrange_basis():
    sig = list(ds.grids.karras(EDM, 10))
    for i, order in ((0, 1), (1, 2), (3, 4), (8, 4)):
        k = min(i + 1, order)

        def basis(tau, j):
            return math.prod((tau - sig[i - q]) / (sig[i - j] - sig[i - q]) for q in range(k) if q != j)
        quad = [integrate.quad(basis, sig[i], sig[i + 1], args=(j,), epsabs=0, epsrel=1e-13)[0] for j in range(k)]
        np.testing.assert_allclose(rs.lms_coefficients(sig, i, k), quad, rtol=1e-11)
    # order 4 on equal steps: the Adams-Bashforth weights h (55, -59, 37, -9)/24
    np.testing.assert_allclose(rs.lms_coefficients([5.0, 4.0, 3.0, 2.0, 1.0], 3, 4),
                               np.array([55, -59, 37, -9]) / 24 * -1.0, rtol=1e-13)


def test_brownian_pair_has_the_covariance_of_one_brownian_motion():
    """n1 = (W(s_mid) - W(s))/sqrt(a), n2 = (W(s') - W(s))/sqrt(b) from one W over sigma:
    unit variances and correlation sqrt(a/b); checked on 200000 paths at 5 standard errors."""
    z = np.random.default_rng(5).standard_normal((2, 200_000))
    n1, n2 = rs.brownian_pair(z[0], z[1], 2.0, 1.4, 0.5)
    corr = math.sqrt((2.0 - 1.4) / (2.0 - 0.5))
    se = (1 - corr ** 2) / math.sqrt(z.shape[1])
    assert abs(np.mean(n1 * n2) - corr) < 5 * max(se, 1 / math.sqrt(z.shape[1]))
    assert abs(np.var(n2) - 1) < 5 * math.sqrt(2 / z.shape[1])
    # and exactly, as coefficients: n2 = sqrt(a/b) z1 + sqrt(1 - a/b) z2
    _, c1 = rs.brownian_pair(1.0, 0.0, 2.0, 1.4, 0.5)
    _, c2 = rs.brownian_pair(0.0, 1.0, 2.0, 1.4, 0.5)
    assert c1 == pytest.approx(corr, rel=1e-15) and c1 ** 2 + c2 ** 2 == pytest.approx(1.0, rel=1e-15)


def test_twins_leave_their_inputs_alone_and_reject_bad_sigmas():
    sig = ds.grids.karras(EDM, 6)
    x = _start(EDM, sig[0])
    before = x.copy()
    for name, (twin, _, kinds) in rs.SAMPLERS.items():
        opts = {"sigmas_mid": np.sqrt(sig[1:] * sig[:-1])} if name == "plms" else {}
        twin(GAUSS_D, x, sig, supply(x.shape, 0), **opts)
        np.testing.assert_array_equal(x, before)
        with pytest.raises(ValueError, match="sigmas must decrease strictly"):
            twin(GAUSS_D, x, sig[::-1], supply(x.shape, 0), **opts)
    with pytest.raises(ValueError, match="last sigma > 0"):
        rs.dpm_solver(GAUSS_D, x, np.r_[sig, 0.0])


# -- deterministic orders against the closed-form flow map ---------------------

def path_error(name, opts, process, grid_kind, n, **grid_kw):
    """Largest |x_end - flow map| over starts across the marginal, in the process's variables."""
    twin = rs.SAMPLERS[name][0]
    grid = getattr(ds.grids, grid_kind)(process, n, **grid_kw)
    sig, m = rs.sigma_space(process, grid)
    if name == "plms" and opts.get("warmup", "prk") == "prk":
        opts = dict(opts, sigmas_mid=rs.sigma_space(process, 0.5 * (grid[1:] + grid[:-1]))[0])
    x = _start(process, grid[0])
    out = m[-1] * twin(GAUSS_D, x / m[0], sig, **opts)
    return float(np.max(np.abs(out - rs.gaussian_flow_map(process, MU, V0, x, grid[0], grid[-1]))))


def fitted(name, opts, process, grid_kind, ladder, **grid_kw):
    errors = [path_error(name, opts, process, grid_kind, n, **grid_kw) for n in ladder]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ds.analysis.OrderFitWarning)
        return ds.analysis.fit_order(ladder, errors)


LADDER = np.array([64, 128, 256, 512])

#: (name, options, expected global order, tolerance). Each is fitted on VP with
#: the logSNR grid and on EDM with the Karras grid over 64..512 steps. The
#: tolerance 0.12 covers the pre-asymptotic curvature measured over this ladder
#: (slopes between successive doublings within 0.1 of the order by 64 steps).
ORDERS = [
    ("euler", {}, 1, 0.12),
    ("ddim", {}, 1, 0.12),
    ("heun", {}, 2, 0.12),
    ("dpm_2", {}, 2, 0.12),
    ("dpmpp_2m", {}, 2, 0.12),
    ("dpmpp_2m_sde", {"eta": 0.0}, 2, 0.12),
    ("dpm_solver", {"order": 1}, 1, 0.12),
    ("dpm_solver", {"order": 2}, 2, 0.12),
    # UniC lifts UniP-2 one order (Zhao et al. 2023, Theorem 3.1), both B(h)
    ("unipc", {}, 3, 0.15),
    ("unipc", {"variant": "bh1"}, 3, 0.15),
    # its first step is Euler (local error O(h^2)), which caps the global order at 2:
    # this multistep method has no second value to start from (measured 2.0)
    # (on Karras grids it approaches 2 from below: slopes 1.70, 1.88, 1.94)
    ("dpmpp_3m_sde", {"eta": 0.0}, 2, 0.2),
    # fixed Adams-Bashforth weights of equal steps, on steps that vary smoothly in sigma:
    # the mismatch is O(h) per weight, a local error O(h^3), so global order 2
    ("plms", {}, 2, 0.12),
    ("plms", {"warmup": "ab"}, 2, 0.12),
]


@pytest.mark.parametrize("process,grid_kind", [(VP, "logsnr"), (EDM, "karras")], ids=["VP-logsnr", "EDM-karras"])
@pytest.mark.parametrize("name,opts,order,tol", ORDERS, ids=lambda v: v if isinstance(v, str) else None)
def test_deterministic_twin_orders(process, grid_kind, name, opts, order, tol):
    fit = fitted(name, opts, process, grid_kind, LADDER)
    assert abs(fit.order - order) < tol, (name, opts, fit)


@pytest.mark.parametrize("process", [VP, EDM], ids=["VP", "EDM"])
def test_dpm_solver_3_is_third_order_on_logsnr_grids(process):
    """Every interval is one full third-order step (Lu et al. 2022, Theorem 3.2)."""
    fit = fitted("dpm_solver", {"order": 3}, process, "logsnr", LADDER)
    assert abs(fit.order - 3) < 0.12, fit


def test_lms_approaches_fourth_order_after_its_warm_up():
    """k-diffusion's LMS starts with orders 1, 2, 3 (local errors O(h^2), O(h^3), O(h^4)),
    but those steps sit at sigma_max, where the flow is nearly linear in sigma (x~ - D is
    almost x~), so their errors are tiny: over 64..512 steps the order is 3.7 to 3.9, rising
    (slopes 3.71, 3.86, 3.92 on EDM/Karras). The warm-up's O(h^2) term would win only far
    below these errors."""
    errors = [path_error("lms", {}, EDM, "karras", n) for n in LADDER]
    fit = ds.analysis.fit_order(LADDER, errors)
    assert 3.6 < fit.order < 4.1, fit
    slopes = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.diff(slopes) > 0) and slopes[-1] > 3.85


def test_plms_is_fourth_order_on_a_grid_uniform_in_sigma():
    """On EDM (sigma = t) a uniform grid has equal sigma steps, where PLMS's fixed weights
    are Adams-Bashforth-4's: it is then LMS of order 4 after its pseudo Runge-Kutta start
    (Liu et al. 2022). Over sigma 80 -> 10 and 128..512 steps the slopes are 3.5, 3.7, 3.85."""
    ladder = np.array([128, 256, 512])
    for warmup in ("prk", "ab"):
        fit = fitted("plms", {"warmup": warmup}, EDM, "uniform", ladder, t_end=10.0)
        assert 3.5 < fit.order < 4.2, (warmup, fit)


def test_unipc_3_is_above_third_order_on_edm_karras():
    """UniPC-3 with UniC is of order 4 in theory; the last step is first order without a
    corrector (lower_order_final), whose O(h^2) local error caps the order at 2 once the
    rest is small: on EDM/Karras over 64..256 steps the measured slopes are 3.9-4.0 (3.6 at
    512); on VP/logSNR the cap shows already (2.3 at 512)."""
    fit = fitted("unipc", {"order": 3}, EDM, "karras", np.array([64, 128, 256]))
    assert 3.6 < fit.order < 4.2, fit


# -- stochastic twins: exact affine law, Monte Carlo, weak order ---------------

STOCHASTIC = [
    ("euler_ancestral", {}, 1),
    ("ddim", {"eta": 1.0}, 1),
    ("euler", {"s_churn": 10.0}, 1),
    ("heun", {"s_churn": 10.0}, 2),
    ("dpm_2", {"s_churn": 10.0}, 2),
    ("dpm_2_ancestral", {}, 2),
    ("dpmpp_2s_ancestral", {}, 2),
    ("dpmpp_sde", {}, 2),
    ("dpmpp_2m_sde", {}, 2),
    ("dpmpp_2m_sde", {"solver_type": "heun"}, 2),
    ("dpmpp_3m_sde", {}, 2),
]


def _sigmas(n):
    return rs.sigma_space(EDM, ds.grids.karras(EDM, n))[0]


@pytest.mark.parametrize("name,opts,weak", STOCHASTIC, ids=lambda v: v if isinstance(v, str) else None)
def test_stochastic_twin_matches_its_exact_law_by_monte_carlo(name, opts, weak):
    """The output of 20000 paths from the exact marginal at sigma_max: mean and variance
    within 5 standard errors of the twin's exact affine law (:func:`affine_law`)."""
    twin, _, kinds = rs.SAMPLERS[name]
    sig = _sigmas(16)
    var_in = V0 + sig[0] ** 2
    mean, var = rs.affine_law(twin, MU, V0, sig, MU, var_in, kinds, **opts)
    n = 20_000
    gen = np.random.default_rng(11)
    x = MU + math.sqrt(var_in) * gen.standard_normal((n, 1))
    out = twin(GAUSS_D, x, sig, supply(x.shape, 12), **opts)[:, 0]
    assert abs(out.mean() - mean) < 5 * math.sqrt(var / n)
    assert abs(out.var() - var) < 5 * var * math.sqrt(2 / (n - 1))
    # 16 steps are far from exact: the check can tell a wrong law from the right one
    assert abs(var - (V0 + sig[-1] ** 2)) > 10 * var * math.sqrt(2 / (n - 1)) or weak == 2


@pytest.mark.parametrize("name,opts,weak", STOCHASTIC, ids=lambda v: v if isinstance(v, str) else None)
def test_stochastic_twin_weak_order_to_the_data_law(name, opts, weak):
    """|mean - mu| + |var - (v + sigma_end^2)| of the exact law, on EDM/Karras over 32..256
    steps: order 1 for Euler-type steps, 2 for the second-order ones (measured 1.9-2.2)."""
    twin, _, kinds = rs.SAMPLERS[name]
    ladder = np.array([32, 64, 128, 256])
    errors = []
    for n in ladder:
        sig = _sigmas(n)
        mean, var = rs.affine_law(twin, MU, V0, sig, MU, V0 + sig[0] ** 2, kinds, **opts)
        errors.append(abs(mean - MU) + abs(var - (V0 + sig[-1] ** 2)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ds.analysis.OrderFitWarning)
        fit = ds.analysis.fit_order(ladder, errors)
    assert abs(fit.order - weak) < 0.2, fit


def test_dpmpp_sde_with_independent_noises_has_another_law():
    """The two noises are increments of one Brownian motion: drawing the second
    independently (corr 0 instead of sqrt(a/b)) changes the exact law, and the
    weak order falls to 1."""
    orig = rs.brownian_pair

    def independent(z1, z2, sigma, sigma_mid, sigma_next):
        return z1, z2
    ladder = np.array([32, 64, 128, 256])
    errs = {}
    try:
        for label, pair in (("tree", orig), ("independent", independent)):
            rs.brownian_pair = pair
            errs[label] = []
            for n in ladder:
                sig = _sigmas(n)
                mean, var = rs.affine_law(rs.dpmpp_sde, MU, V0, sig, MU, V0 + sig[0] ** 2, (rs.STEP, rs.BRIDGE))
                errs[label].append(abs(var - (V0 + sig[-1] ** 2)))
    finally:
        rs.brownian_pair = orig
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ds.analysis.OrderFitWarning)
        tree, indep = ds.analysis.fit_order(ladder, errs["tree"]), ds.analysis.fit_order(ladder, errs["independent"])
    assert abs(tree.order - 2) < 0.25 and abs(indep.order - 1) < 0.2, (tree, indep)


def test_stochastic_twins_sample_the_eight_gaussians_mixture():
    """A nonlinear denoiser: the eight-Gaussians mixture's exact D = x + sigma^2 score.
    After 32 Karras steps down to sigma = 0, the output's mean and covariance match
    the mixture's (mean 0, covariance sum_k w_k (mu_k mu_k^T + c_k I)) within 5
    standard errors of 4000 paths, each error estimated from the sample's own
    second (mean) or fourth (covariance) moments. (At 20 steps dpmpp_3m_sde's
    variance is still 0.1 low, 5 standard errors: its first steps are of lower order.)"""
    gm = ds.datasets.eight_gaussians()
    score = gm.score(ds.EDM(sigma_max=200.0))  # churn raises sigma up to sqrt(2) sigma_max

    def D(x, sigma):
        return x + sigma * sigma * score(x, sigma)
    mean = gm.weights @ gm.means
    cov = (gm.means * gm.weights[:, None]).T @ gm.means + np.sum(gm.weights * gm.covs) * np.eye(2) \
        - np.outer(mean, mean)
    sig = np.r_[ds.grids.karras(EDM, 32), 0.0]
    n = 4000
    for name, opts, _ in STOCHASTIC:
        gen = np.random.default_rng(21)
        x = gm.sample(n, rng=22) + sig[0] * gen.standard_normal((n, 2))
        out = rs.SAMPLERS[name][0](D, x, sig, supply(x.shape, 23), **opts)
        c = out - out.mean(0)
        assert np.all(np.abs(out.mean(0) - mean) < 5 * out.std(0) / math.sqrt(n)), name
        prods = c[:, :, None] * c[:, None, :]
        se = prods.std(0) / math.sqrt(n)
        assert np.all(np.abs(prods.mean(0) - cov) < 5 * se), (name, prods.mean(0), cov)
