"""The k-diffusion samplers as step tables (diffsde/methods/_ksamplers.py):
each C table against its NumPy twin (tests/reference_samplers.py) on the same
score and the same normals, the global orders of the deterministic ones
against the closed-form probability-flow map of Gaussian data, the output
laws of the stochastic ones, bit-identity across threads and chunks, and
their options."""
import math

import numpy as np
import pytest

import diffsde as ds
import reference_samplers as rs
from conftest import GAUSS_SCORE, MU, V0, VP, engine_noise
from diffsde import _rng

EDM = ds.EDM()
#: A path given only by m and s (numerical derivatives and inverses).
OU = ds.AffineSDE(lambda t: np.exp(-t), lambda t: np.sqrt(-np.expm1(-2 * t)), T=3.0, name="OU")
PROCESSES = {"VP": VP, "EDM": EDM, "AffineSDE": OU}

SAMPLERS = ["euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms", "dpmpp_2s_ancestral",
            "dpmpp_sde", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_3m_sde", "ddim"]
STOCHASTIC = [n for n in SAMPLERS if not ds.methods.get(n).deterministic]
#: Options that make every in-step draw happen (churn everywhere; eta > 0 is
#: the default of the stochastic ones); ddim with eta = 0.7 checks its split.
OPTIONS = {"euler": dict(s_churn=2.0, s_tmin=0.01, s_noise=1.003),
           "heun": dict(s_churn=2.0, s_tmin=0.01, s_noise=1.003),
           "dpm_2": dict(s_churn=2.0, s_tmin=0.01, s_noise=1.003),
           "euler_ancestral": dict(s_noise=0.9), "dpm_2_ancestral": dict(eta=0.8),
           "dpmpp_sde": dict(r=0.4), "dpmpp_2m_sde": dict(solver_type="heun"), "lms": dict(order=3),
           "ddim": dict(eta=0.7)}


def _grid(process, n):
    """A Karras grid ending at t = 0 (sigma = 0, k-diffusion's final zero)
    that starts low enough for a churned sigma to stay inside the process."""
    top = 0.5 * float(process.sigma_of_t(process.default_t_start))
    ts = ds.grids.karras(process, n, sigma_max=top, t_end=process.default_t_end)
    ts[-1] = 0.0
    return ts


def _denoiser(process, score, ts):
    """D(x~, sigma) of ``score`` at t(sigma); at the grid's own sigmas at the
    grid's own times (the table's score times there)."""
    m, s = process.marginal_coefficients(ts)
    at_grid = {float(si / mi): (mi, ssi) for si, mi, ssi in zip(s, m, s)}

    def denoise(xt, sigma):
        if sigma in at_grid:
            mm, ss = at_grid[sigma]
        else:
            mm, ss = process.marginal_coefficients(process.t_of_sigma(np.array([sigma])))
            mm, ss = float(np.broadcast_to(mm, (1,))[0]), float(ss[0])
        x = (mm * xt).astype(xt.dtype)
        return (x + ss * ss * score(x, mm, ss)) / mm
    return denoise


def _linear(x, m, s):
    return (m * MU - x) / (m * m * V0 + s * s)


@pytest.mark.parametrize("process", list(PROCESSES.values()), ids=list(PROCESSES))
@pytest.mark.parametrize("name", SAMPLERS)
def test_table_matches_numpy_twin(name, process):
    """The C table and the twin on one exact score and one set of normals:
    1e-12 relative in float64 (the table works in x, the twin in x/m, so the
    same numbers are rounded in a different order: ~10 ulps per step)."""
    n = 12
    ts = _grid(process, n)
    x0 = np.linspace(-3, 3, 14).reshape(7, 2) * float(process.marginal_coefficients(ts[0])[1]) + 0.3
    opts = OPTIONS.get(name, {})
    out = ds.reverse(process, GAUSS_SCORE, x0, ts=ts, method=name, rng=5, **opts).x
    m0, m1 = (float(v) for v in process.marginal_coefficients(np.array([ts[0], ts[-1]]))[0])
    sig = process.sigma_of_t(ts)
    sig[-1] = 0.0
    twin = rs.SAMPLERS[name][0]
    got = twin(_denoiser(process, _linear, ts), x0 / m0, sig, engine_noise(_rng.key_from_rng(5), n, x0.shape),
               **opts)
    np.testing.assert_allclose(out / m1, got, rtol=1e-12, atol=1e-12 * np.abs(got).max())


@pytest.mark.parametrize("name", SAMPLERS)
def test_table_matches_numpy_twin_float32(name):
    """float32 runs: within a few float32 ulps per step of the float64 twin."""
    n = 10
    ts = _grid(EDM, n)
    x0 = np.linspace(-20, 20, 16).reshape(8, 2)
    opts = OPTIONS.get(name, {})
    out = ds.reverse(EDM, GAUSS_SCORE, x0.astype(np.float32), ts=ts, method=name, rng=3, **opts).x
    assert out.dtype == np.float32
    sig = EDM.sigma_of_t(ts)
    got = rs.SAMPLERS[name][0](_denoiser(EDM, _linear, ts), x0, sig,
                               engine_noise(_rng.key_from_rng(3), n, x0.shape, np.float32), **opts)
    np.testing.assert_allclose(out, got, rtol=2e-5, atol=2e-5 * np.abs(got).max())


def test_user_noise_replaces_the_step_stream():
    """noise= replaces stream 0 (the step's normal) and nothing else."""
    n = 6
    ts = _grid(EDM, n)
    x0 = np.linspace(-5, 5, 6).reshape(3, 2)
    z = np.random.default_rng(1).standard_normal((n, 3, 2))
    out = ds.reverse(EDM, GAUSS_SCORE, x0, ts=ts, method="dpmpp_sde", rng=4, noise=z).x
    key_noise = engine_noise(_rng.key_from_rng(4), n, x0.shape)

    def noise(step, which):
        return z[n - 1 - step] if which == rs.STEP else key_noise(step, which)
    got = rs.dpmpp_sde(_denoiser(EDM, _linear, ts), x0, EDM.sigma_of_t(ts), noise)
    np.testing.assert_allclose(out, got, rtol=1e-12, atol=1e-12)


def test_euler_ddim_agree_to_rounding_on_every_process():
    """euler without churn and ddim with eta = 0 are one map (VP's ddim is the
    DDPM chain's form, equal to rounding)."""
    x0 = np.linspace(-2, 2, 10)[:, None]
    for process in (VP, EDM, OU, ds.VESDE(), ds.SubVPSDE(), ds.RectifiedFlow()):
        a = ds.reverse(process, GAUSS_SCORE, x0, 30, method="euler").x
        b = ds.reverse(process, GAUSS_SCORE, x0, 30, method="ddim").x
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


# ---- orders on Gaussian data ---------------------------------------------------------------

#: method -> (grid family, expected order). LMS on a Karras grid in sigma.
ORDERS = {"euler": ("logsnr", 1), "heun": ("karras", 2), "dpm_2": ("logsnr", 2), "lms": ("karras", 4),
          "dpmpp_2m": ("logsnr", 2), "ddim": ("logsnr", 1)}


def _flow_error(process, name, family, n):
    t0, t1 = process.default_t_start, process.default_t_end
    ts = getattr(ds.grids, family)(process, n, t_start=t0, t_end=t1)
    m0, s0 = process.marginal_coefficients(t0)
    x0 = (m0 * MU + math.sqrt(m0 * m0 * V0 + s0 * s0) * np.linspace(-2, 2, 9))[:, None]
    out = ds.reverse(process, GAUSS_SCORE, x0, ts=ts, method=name).x
    exact = rs.gaussian_flow_map(process, MU, V0, x0, t0, t1)
    m1 = float(process.marginal_coefficients(t1)[0])
    return float(np.max(np.abs(out - exact))) / m1


@pytest.mark.parametrize("process", [VP, EDM], ids=["VP", "EDM"])
@pytest.mark.parametrize("name", [n for n in ORDERS if n != "lms"])
def test_deterministic_global_order(name, process):
    """Fitted global order on the closed-form flow map of N(MU, V0), from
    t_start to default_t_end (sigma > 0: every method at its full order).
    The 95% CI must contain the expected order, or the fit must lie within
    0.15 of it (ORDER_TOL of the suite: the pre-asymptotic bend of the
    log-log line at these step counts)."""
    family, expected = ORDERS[name]
    steps = np.array([16, 24, 32, 48, 64])
    errors = [_flow_error(process, name, family, int(n)) for n in steps]
    fit = ds.analysis.fit_order(steps, errors)
    inside = fit.ci is not None and fit.ci[0] <= expected <= fit.ci[1]
    assert inside or abs(fit.order - expected) < 0.15, (fit, errors)


@pytest.mark.parametrize("process", [VP, EDM], ids=["VP", "EDM"])
def test_lms_order_approaches_four_after_its_warm_up(process):
    """LMS (order 4) starts with Adams-Bashforth of orders 1, 2 and 3 on its
    first three steps. On a Karras grid those steps sit at the largest
    sigmas, where D barely moves, so their errors are small but fall more
    slowly: the pairwise slope climbs towards 4 (measured 2.8, 3.4, 3.7,
    3.85, 3.9 from 16 to 512 steps on both processes). Asserted: the slope
    increases along the ladder, the fit over 128..512 is within 0.25 of 4
    and its last pairwise slope within 0.15."""
    steps = np.array([16, 32, 64, 128, 256, 512])
    errors = np.array([_flow_error(process, "lms", "karras", int(n)) for n in steps])
    slopes = -np.diff(np.log(errors)) / np.log(2)
    assert np.all(np.diff(slopes) > 0), slopes
    fit = ds.analysis.fit_order(steps[3:], errors[3:])
    assert abs(fit.order - 4) < 0.25 and abs(slopes[-1] - 4) < 0.15, (fit, slopes)


# ---- laws of the stochastic samplers -------------------------------------------------------

def _law(name, n, kinds):
    """The exact (mean, var) of the twin's output from the prior N(0, sigma_max^2)
    on a Karras grid to sigma = 0 for data N(MU, V0) on EDM."""
    sig = EDM.sigma_of_t(ds.grids.karras(EDM, n, t_end=0.0))
    return rs.affine_law(rs.SAMPLERS[name][0], MU, V0, sig, 0.0, float(sig[0]) ** 2, kinds)


@pytest.mark.parametrize("name", STOCHASTIC)
def test_stochastic_output_law_gaussian(name):
    """From the prior N(0, sd(T)^2) on EDM, data N(MU, V0): the sample mean
    and variance of 40,000 paths at 40 steps match the exact law of the
    twin (every twin is affine in its start and normals for Gaussian data,
    tests/reference_samplers.affine_law) within 5 standard errors; and that
    law converges to the data's: its error at 160 steps is below 0.6 times
    the error at 40 (first weak order would give 0.25; the allowance covers
    the pre-asymptotic range; euler_ancestral measures 0.30)."""
    n, rows = 40, 40_000
    ts = ds.grids.karras(EDM, n, t_end=0.0)
    x = ds.reverse(EDM, GAUSS_SCORE, None, ts=ts, method=name, shape=(rows,), rng=11).x
    kinds = (rs.STEP, rs.BRIDGE) if name == "dpmpp_sde" else (rs.STEP,)
    mean, var = _law(name, n, kinds)
    assert abs(x.mean() - mean) < 5 * math.sqrt(var / rows)
    assert abs(x.var(ddof=1) - var) < 5 * var * math.sqrt(2 / (rows - 1))
    mean4, var4 = _law(name, 4 * n, kinds)
    err, err4 = abs(mean - MU) + abs(var - V0), abs(mean4 - MU) + abs(var4 - V0)
    assert err4 < 0.6 * err, (err, err4)


@pytest.mark.parametrize("name", STOCHASTIC)
def test_stochastic_eight_gaussians(name):
    """On the eight-Gaussians mixture with its exact score, the mean and
    covariance of 4000 samples after 60 steps match the data's within 5
    standard errors (+ a 0.03 allowance for the discretization bias)."""
    data = ds.datasets.eight_gaussians()
    rows = 4000
    ts = ds.grids.karras(EDM, 60, sigma_max=20.0, t_end=0.0)
    x = ds.reverse(EDM, data, None, ts=ts, method=name, shape=(rows, 2), rng=21).x
    ref = data.sample(200_000, rng=0)
    mu, cov = ref.mean(axis=0), np.cov(ref.T)
    se = np.sqrt(np.diag(cov) / rows)
    assert np.all(np.abs(x.mean(axis=0) - mu) < 5 * se + 0.03)
    var_se = np.diag(cov) * math.sqrt(2 / (rows - 1))
    assert np.all(np.abs(np.diag(np.cov(x.T)) - np.diag(cov)) < 5 * var_se + 0.03 * np.diag(cov))


# ---- reproducibility -------------------------------------------------------------------------

@pytest.mark.parametrize("name", STOCHASTIC + ["euler", "heun"])
def test_bit_identical_across_threads_and_chunks(name):
    """One thread, two threads and a chunked prior give the same bits (the
    normals are counter-based: a function of (key, stream, interval, index))."""
    opts = OPTIONS.get(name, {}) if name in ("euler", "heun") else {}
    ts = _grid(EDM, 9)
    run = dict(ts=ts, method=name, rng=8, shape=(30_001, 2), **opts)
    previous = ds.set_num_threads(1)
    try:
        one = ds.reverse(EDM, GAUSS_SCORE, None, **run).x
        ds.set_num_threads(2)
        two = ds.reverse(EDM, GAUSS_SCORE, None, **run).x
        chunked = ds.reverse(EDM, GAUSS_SCORE, None, chunks=7_777, **run).x
    finally:
        ds.set_num_threads(previous)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one, np.asarray(chunked))


# ---- options ---------------------------------------------------------------------------------

def test_option_a_method_does_not_take_raises_naming_it():
    with pytest.raises(ValueError, match=r"s_churn=1.0 applies to method=.*'euler'.*got method='dpmpp_2m'"):
        ds.reverse(EDM, GAUSS_SCORE, np.zeros(3), 4, method="dpmpp_2m", s_churn=1.0)
    with pytest.raises(ValueError, match=r"eta=0.5 applies to .*got method='euler' on EDM"):
        ds.reverse(EDM, GAUSS_SCORE, np.zeros(3), 4, method="euler", eta=0.5)


@pytest.mark.parametrize("name, option, value, message", [
    ("euler_ancestral", "eta", -1.0, r"eta must be finite and >= 0; got -1.0"),
    ("heun", "s_churn", float("nan"), r"s_churn must be finite and >= 0; got nan"),
    ("dpmpp_sde", "r", 1.5, r"r must be .*\(0, 1\).*; got 1.5"),
    ("dpmpp_2m_sde", "solver_type", "euler", r"solver_type must be 'midpoint' or 'heun'; got 'euler'"),
    ("lms", "order", 9, r"order must be an int in \[1, 7\]; got 9"),
    ("lms", "order", 2.0, r"order must be an int in \[1, 7\]; got 2.0"),
    ("euler", "s_tmax", -1.0, r"s_tmax must be finite and >= 0; got -1.0"),
])
def test_bad_option_values_raise_with_name_value_allowed(name, option, value, message):
    with pytest.raises((ValueError, TypeError), match=message):
        ds.reverse(EDM, GAUSS_SCORE, np.zeros(3), 4, method=name, **{option: value})


def test_eta_none_is_each_methods_default():
    """eta=None (reverse's default) gives eta = 1 to the ancestral samplers and 0 to ddim."""
    x0 = np.linspace(-40, 40, 8)
    a = ds.reverse(EDM, GAUSS_SCORE, x0, 6, method="euler_ancestral", rng=1).x
    b = ds.reverse(EDM, GAUSS_SCORE, x0, 6, method="euler_ancestral", rng=1, eta=1.0).x
    np.testing.assert_array_equal(a, b)
    c = ds.reverse(EDM, GAUSS_SCORE, x0, 6, method="ddim", rng=1).x
    np.testing.assert_array_equal(c, ds.reverse(EDM, GAUSS_SCORE, x0, 6, method="ddim", eta=0.0).x)
    assert not np.array_equal(a, c)


def test_churn_beyond_the_process_raises_naming_the_method():
    """A churned sigma above sigma(T) has no time on the process: say so."""
    with pytest.raises(ValueError, match=r"method='heun' evaluates the score at the churned noise level"):
        ds.reverse(EDM, GAUSS_SCORE, np.zeros(3), 8, method="heun", s_churn=10.0)


def test_samplers_run_on_chains():
    """On a DDPM chain the samplers run on the chain's own grid: euler = ddim
    to rounding, and the deterministic ones agree with the flow map of the
    chain's SDE to their order's accuracy at N = 200."""
    chain = ds.DDPM.linear(200)
    x0 = np.linspace(-2, 2, 7)[:, None]
    a = ds.reverse(chain, GAUSS_SCORE, x0, method="euler").x
    b = ds.reverse(chain, GAUSS_SCORE, x0, method="ddim").x
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    for name in ("heun", "dpmpp_2m", "dpm_2"):
        out = ds.reverse(chain, GAUSS_SCORE, x0, method=name).x
        assert np.all(np.isfinite(out))
