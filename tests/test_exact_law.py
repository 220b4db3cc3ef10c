"""ds.analysis.exact_output_law: the exact Gaussian output law of a sampler
(a moment recursion over the registers of its step table) against Monte
Carlo runs for every registered reverse method, closed forms, the
probability-flow map and the NumPy twins' exact affine laws."""
import math
import warnings

import numpy as np
import pytest
from scipy import linalg

import diffsde as ds
import reference_samplers as rs
from conftest import MU, V0, VP
from diffsde._exact_law import gaussian_kl_w2, register_moments
from diffsde._steptable import StepTable, combine_rows, normal_rows

#: Full-covariance 2-D data (the recursion runs in its eigenbasis).
FULL = ds.GaussianMixture([1.0], [[1.0, -0.5]], [[[0.30, 0.12], [0.12, 0.20]]])
#: Diagonal 2-D data, and the same law as a LinearScore.
DIAG = ds.GaussianMixture([1.0], [[0.5, 2.0]], [[0.2, 0.6]])
DIAG_LINEAR = ds.LinearScore([0.5, 2.0], [0.2, 0.6])
EDM = ds.EDM()
DDPM = ds.DDPM.linear(40)
PROCESSES = {"VP": VP, "EDM": EDM, "VE": ds.VESDE(0.01, 10.0), "DDPM": DDPM}
PATHS = 20_000
Z = 5.0


def _start(process, method, grid, data, n, seed):
    """n draws of the exact marginal at the run's t_start: m x0 + s z."""
    view = ds.methods.view(process, method, grid)
    m, s = float(view.m[-1]), float(view.sd[-1])
    x0 = data.sample(n, rng=seed)
    return m * x0 + s * np.random.default_rng(seed + 1).standard_normal(x0.shape)


def _assert_law(x, mean, cov, z=Z):
    """Sample mean and covariance of the rows of x within z standard errors
    of a Gaussian law N(mean, cov): se(mean_i) = sqrt(C_ii/n),
    se(C_ij) = sqrt((C_ii C_jj + C_ij^2)/n)."""
    n = x.shape[0]
    diag = np.diag(cov)
    mean_err = np.abs(x.mean(axis=0) - mean)
    assert np.all(mean_err <= z * np.sqrt(diag / n)), (mean_err, np.sqrt(diag / n))
    cov_err = np.abs(np.cov(x, rowvar=False) - cov)
    se = np.sqrt((np.outer(diag, diag) + cov ** 2) / n)
    assert np.all(cov_err <= z * se), (cov_err, se)


@pytest.mark.parametrize("name", list(PROCESSES))
def test_exact_law_matches_monte_carlo_for_every_registered_method(name):
    """Every reverse method the registry offers on the process (the
    methods added later included), a few coarse steps, from the exact
    marginal: mean and covariance of 20,000 paths within 5 standard
    errors of the exact law."""
    process = PROCESSES[name]
    # the chain's own grid, or 6 uniform steps down to the process's usual t_end
    grid = None if name == "DDPM" else ds.grids.uniform(process, 6)
    for i, method in enumerate(m for m in ds.methods.available(process) if not ds.methods.get(m).adaptive):
        law = ds.analysis.exact_output_law(process, FULL, method, ts=grid)
        x = _start(process, method, grid, FULL, PATHS, 100 + i)
        out = ds.reverse(process, FULL, x, ts=grid, method=method, rng=7 + i).x
        _assert_law(out, law.mean, law.cov)


def test_exact_law_from_the_prior_matches_monte_carlo():
    grid = ds.grids.uniform(VP, 5)
    for method in [m for m in ds.methods.available(VP) if not ds.methods.get(m).adaptive]:
        law = ds.analysis.exact_output_law(VP, DIAG, method, ts=grid, start="prior")
        out = ds.reverse(VP, DIAG, None, ts=grid, shape=(PATHS, 2), method=method, rng=3).x
        _assert_law(out, law.mean, law.cov)
    # and with t_end = 0, where the target is the data law itself
    law = ds.analysis.exact_output_law(VP, DIAG, "em", steps=5, start="prior")
    np.testing.assert_array_equal(law.target_mean, DIAG.means[0])
    np.testing.assert_allclose(law.target_cov, np.diag(DIAG.covs[0]), rtol=1e-15)
    out = ds.reverse(VP, DIAG, None, 5, shape=(PATHS, 2), method="em", rng=3).x
    _assert_law(out, law.mean, law.cov)


@pytest.mark.parametrize("alpha", [0.0, 1.0, 2.0])
def test_one_reverse_em_step_closed_form(alpha):
    """One step t1 -> t0 of reverse EM, x' = (1 - h f) x + (1 + alpha^2)/2 g^2 h s + alpha g sqrt(h) z
    with s = (m mu - x)/V, V = m^2 v + s^2 at t1: mean and variance by hand."""
    t1, t0 = 0.4, 0.1
    law = ds.analysis.exact_output_law(VP, ds.LinearScore(MU, V0), "em", t_start=t1, t_end=t0, steps=1,
                                       alpha=alpha)
    m, s = VP.marginal_coefficients(t1)
    f, g = VP.drift_coefficient(t1), VP.diffusion(t1)
    h = t1 - t0
    V = m * m * V0 + s * s
    c = 0.5 * (1 + alpha ** 2) * g * g * h
    a = 1 - h * f - c / V
    mean = a * m * MU + c * m * MU / V
    var = a * a * V + alpha ** 2 * g * g * h
    np.testing.assert_allclose(law.mean, [mean], rtol=1e-13)
    np.testing.assert_allclose(law.cov, [[var]], rtol=1e-13)
    me, se = VP.marginal_coefficients(t0)
    np.testing.assert_allclose(law.target_mean, [me * MU], rtol=1e-14)
    np.testing.assert_allclose(law.target_cov, [[me * me * V0 + se * se]], rtol=1e-14)


def test_deterministic_output_is_the_image_of_the_start_law():
    """A deterministic sampler is x -> A x + c: its law from N(a, B) is
    N(A a + c, A^2 B), with A and c read off two noiseless probes run in C."""
    for method in ("ode_heun", "ddim"):
        probes = np.array([[0.0], [1.0]])
        out = ds.reverse(VP, ds.LinearScore(MU, V0), probes, 7, method=method).x[:, 0]
        c, A = out[0], out[1] - out[0]
        law = ds.analysis.exact_output_law(VP, ds.LinearScore(MU, V0), method, steps=7)
        m, s = VP.marginal_coefficients(VP.T)
        np.testing.assert_allclose(law.mean, [A * m * MU + c], rtol=1e-12)
        np.testing.assert_allclose(law.cov, [[A * A * (m * m * V0 + s * s)]], rtol=1e-12)


@pytest.mark.parametrize("method, order", [("ddim", 1.0), ("ode_heun", 2.0)])
def test_w2_to_the_flow_map_law_converges_at_the_method_order(method, order):
    """From the exact marginal the probability-flow map lands exactly on the
    marginal at t_end (x_end = m_e mu + sd_e (x - m_s mu)/sd_s), so W2 to the
    target measures a deterministic method's error in the affine map: it
    falls like N^-order. Tolerance 0.1: the interval of the fit over 16..256
    steps is a few hundredths wide once asymptotic."""
    ladder = np.array([16, 32, 64, 128, 256])
    w2 = [ds.analysis.exact_output_law(VP, DIAG, method, steps=int(n), t_end=1e-3).w2 for n in ladder]
    fit = ds.analysis.fit_order(ladder, w2)
    assert abs(fit.order - order) < 0.1, fit
    # the limit is the flow map itself
    fine = ds.analysis.exact_output_law(VP, DIAG, method, steps=4096, t_end=1e-3)
    np.testing.assert_allclose(fine.mean, fine.target_mean, rtol=1e-3 if order == 1 else 1e-6)


def test_em_alpha_zero_converges_to_the_target():
    ladder = np.array([32, 64, 128, 256])
    w2 = [ds.analysis.exact_output_law(EDM, DIAG, "em", steps=int(n), alpha=0.0, t_end=0.002).w2 for n in ladder]
    assert np.all(np.diff(w2) < 0)


SIGMA_TWINS = [name for name in rs.SAMPLERS]


@pytest.mark.parametrize("name", SIGMA_TWINS)
def test_exact_law_equals_the_twins_affine_law(name):
    """The NumPy twin of each sigma-space sampler (every twin's method is
    registered on VP) run on the same grid: its exact affine law (probe
    runs, tests/reference_samplers.py) in x = m x~ equals the recursion's."""
    assert name in ds.methods.available(VP), f"the twin {name!r} has no method registered on VPSDE"
    twin, _, kinds = rs.SAMPLERS[name]
    grid = ds.grids.logsnr(VP, 8)
    sigmas, m = rs.sigma_space(VP, grid)
    mean_in = MU
    var_in = V0 + sigmas[0] ** 2
    # PLMS with the Adams-Bashforth warm-up: no midpoint sigmas to agree on
    options = {"warmup": "ab"} if name == "plms" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mean, var = rs.affine_law(twin, MU, V0, sigmas, mean_in, var_in, kinds, **options)
    law = ds.analysis.exact_output_law(VP, ds.LinearScore(MU, V0), name, ts=grid, **options)
    np.testing.assert_allclose(law.mean, [m[-1] * mean], rtol=1e-10)
    np.testing.assert_allclose(law.cov, [[m[-1] ** 2 * var]], rtol=1e-9)


def test_ddim_is_euler_in_sigma_space_exactly():
    """VP's ddim (eta = 0) is Euler on the Karras ODE in x~ = x/m; the
    twin's affine law on the run's grid equals the recursion's, and so does
    eta = 1 against the DDIM twin."""
    grid = ds.grids.logsnr(VP, 10)
    sigmas, m = rs.sigma_space(VP, grid)
    for eta in (0.0, 1.0):
        mean, var = rs.affine_law(rs.ddim, MU, V0, sigmas, MU, V0 + sigmas[0] ** 2, (rs.STEP,), eta=eta)
        law = ds.analysis.exact_output_law(VP, ds.LinearScore(MU, V0), "ddim", ts=grid, eta=eta)
        np.testing.assert_allclose(law.mean, [m[-1] * mean], rtol=1e-10)
        np.testing.assert_allclose(law.cov, [[m[-1] ** 2 * var]], rtol=1e-9)


def test_kl_and_w2_equal_the_general_gaussian_formulas():
    """KL and W2 for a full covariance against the general formulas:
    KL = (tr(B^-1 A) + (b - a)^T B^-1 (b - a) - d + log det B / det A)/2 and
    W2^2 = |a - b|^2 + tr(A + B - 2 (B^1/2 A B^1/2)^1/2) (SciPy's sqrtm)."""
    law = ds.analysis.exact_output_law(VP, FULL, "em", steps=12)
    A, B = law.cov, law.target_cov
    dm = law.mean - law.target_mean
    Bi = np.linalg.inv(B)
    kl = 0.5 * (np.trace(Bi @ A) + dm @ Bi @ dm - 2 + np.log(np.linalg.det(B) / np.linalg.det(A)))
    rb = linalg.sqrtm(B).real
    w2 = math.sqrt(dm @ dm + np.trace(A + B - 2 * linalg.sqrtm(rb @ A @ rb).real))
    np.testing.assert_allclose(law.kl, kl, rtol=1e-8)
    np.testing.assert_allclose(law.w2, w2, rtol=1e-8)


def test_small_kl_keeps_its_relative_precision():
    """A variance ratio 1 + 2^-30 (exact in float64): KL = x^2/4 per coordinate to leading
    order, which the naive x - log(1 + x) would lose to cancellation."""
    x = 2.0 ** -30
    kl, w2 = gaussian_kl_w2(np.zeros(1), np.array([1.0 + x]), np.zeros(1), np.ones(1))
    np.testing.assert_allclose(kl, 0.5 * (x * x / 2 - x ** 3 / 3), rtol=1e-12)
    np.testing.assert_allclose(w2, x / (math.sqrt(1 + x) + 1), rtol=1e-12)


def test_linear_score_and_single_component_mixture_agree():
    a = ds.analysis.exact_output_law(VP, DIAG, "ancestral", steps=9)
    b = ds.analysis.exact_output_law(VP, DIAG_LINEAR, "ancestral", steps=9)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-14)
    np.testing.assert_allclose(a.cov, b.cov, rtol=1e-14)
    assert a.kl == pytest.approx(b.kl, rel=1e-12) and a.w2 == pytest.approx(b.w2, rel=1e-12)


def test_a_normal_drawn_twice_is_one_normal():
    """Two normal rows of one (stream, interval) hold the same draw:
    x + Z - Z' = x exactly, and x + Z + Z' has variance 4 more."""
    def table(sign):
        return StepTable.program(normal_rows(1, interval=0), normal_rows(2, interval=0),
                                 combine_rows(0, [(1.0, 0), (1.0, 1), (sign, 2)]))
    lam = np.array([0.5])
    g, C = register_moments(table(-1.0), lam, np.array([1.0]), np.array([2.0]))
    assert C[0, 0, 0] == 2.0 and g[0, 0] == 1.0
    g, C = register_moments(table(1.0), lam, np.array([1.0]), np.array([2.0]))
    assert C[0, 0, 0] == 6.0
    # and the C driver agrees: the difference of the two copies is 0
    x = ds.run_steps(np.zeros((4, 3)), table(-1.0), rng=1).x
    assert np.all(x == 0)


def test_errors():
    mixture = ds.datasets.eight_gaussians()
    with pytest.raises(ValueError, match="mixture of 8 components"):
        ds.analysis.exact_output_law(VP, mixture, "em", steps=4)
    with pytest.raises(TypeError, match="data must be"):
        ds.analysis.exact_output_law(VP, np.zeros(2), "em", steps=4)
    with pytest.raises(ValueError, match="corrector"):
        ds.analysis.exact_output_law(VP, DIAG, "em", steps=4, corrector="langevin")
    with pytest.raises(ValueError, match="start must be"):
        ds.analysis.exact_output_law(VP, DIAG, "em", steps=4, start="data")
    with pytest.raises(ValueError, match="langevin rows"):
        register_moments(StepTable.langevin(1.0, 0.16, t=0.5, m=0.9, sd=0.4), np.ones(1), np.ones(1), np.ones(1))
    with pytest.raises(ValueError, match="not available"):
        ds.analysis.exact_output_law(EDM, DIAG, "ancestral", steps=4)
    with pytest.raises(ValueError, match="eta"):
        ds.analysis.exact_output_law(VP, DIAG, "em", steps=4, eta=0.5)
