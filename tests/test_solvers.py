"""dpm_solver, unipc and plms: the step tables against their NumPy twins
(tests/reference_samplers.py) on identical scores, their global orders
against the closed-form probability-flow map of Gaussian data, their
aliases, their nfe and their errors."""
import math
import warnings

import numpy as np
import pytest

import diffsde as ds
import reference_samplers as rs
from conftest import GAUSS_SCORE, MU, V0, VE, VP

EDM = ds.EDM()
#: A user's path given only by m and s (numerical derivatives and inverses).
OU = ds.AffineSDE(lambda t: np.exp(-t), lambda t: np.sqrt(-np.expm1(-2 * t)), T=3.0, name="OU")
DDPM = ds.DDPM.from_sde(VP, 40, rule="exact")
SMLD = ds.SMLD.from_sde(ds.VESDE(0.01, 50.0), 40)

#: (method, options) of every configuration the tests compare.
CONFIGS = [("dpm_solver", {"order": 1}), ("dpm_solver", {"order": 2}), ("dpm_solver", {}),
           ("unipc", {}), ("unipc", {"order": 3}), ("unipc", {"variant": "bh1"}), ("unipc", {"order": 1}),
           ("plms", {}), ("plms", {"warmup": "ab"})]
IDS = [f"{m}-{'-'.join(f'{k}={v}' for k, v in o.items()) or 'defaults'}" for m, o in CONFIGS]

#: Relative agreement with the twins in float64: the tables and the twins
#: sum the same terms in other orders, and dpm_solver's third-order weights
#: cancel (e^h - 1)/h - 1 against 1 (measured at most 3e-12 on 12 steps).
RTOL64 = 1e-10


def exact_score(process):
    return lambda x, t: GAUSS_SCORE.evaluate(x, *process.marginal_coefficients(t))


def starts(process, t_start, rows=7):
    """States across the marginal at t_start (-3 to 3 standard deviations)."""
    m, s = process.marginal_coefficients(t_start)
    return m * MU + math.sqrt(m * m * V0 + s * s) * np.linspace(-3, 3, rows)[:, None]


def twin_run(name, opts, sigmas, x_tilde, denoise, sigmas_mid=None):
    opts = dict(opts)
    if name == "plms" and opts.get("warmup", "prk") == "prk":
        opts["sigmas_mid"] = sigmas_mid
    return rs.SAMPLERS[name][0](denoise, x_tilde, sigmas, **opts)


def twin_on_grid(process, grid, name, opts, x):
    """The twin on the time grid, in the process's variables (x = m x~)."""
    sig, m = rs.sigma_space(process, grid)
    mid = rs.sigma_space(process, 0.5 * (grid[1:] + grid[:-1]))[0]
    return m[-1] * twin_run(name, opts, sig, x / m[0], rs.denoiser_from_score(exact_score(process), process), mid)


# -- the tables are the twins -----------------------------------------------------

@pytest.mark.parametrize("process,grid_kind",
                         [(VP, "logsnr"), (EDM, "karras"), (OU, "logsnr"), (VP, "uniform"), (VE, "logsnr")],
                         ids=["VP-logsnr", "EDM-karras", "AffineSDE-logsnr", "VP-uniform", "VE-logsnr"])
@pytest.mark.parametrize("name,opts", CONFIGS, ids=IDS)
def test_tables_are_the_twins_on_identical_scores(process, grid_kind, name, opts):
    """13 steps (the rings of 3 and 4 registers wrap several times), float64,
    starts across the marginal; relative tolerance RTOL64."""
    grid = getattr(ds.grids, grid_kind)(process, 13)
    x = starts(process, grid[0])
    got = ds.reverse(process, GAUSS_SCORE, x, ts=grid, method=name, **opts).x
    np.testing.assert_allclose(got, twin_on_grid(process, grid, name, opts, x), rtol=RTOL64, atol=0)


@pytest.mark.parametrize("name,opts", CONFIGS, ids=IDS)
def test_float32_runs_are_the_twins_to_float32_rounding(name, opts):
    """float32 state and weights, 13 steps on VP/logSNR: each row rounds once
    to 2^-24 relative; the error stays below 40 row roundings (2.4e-6), far
    below any bug (a wrong weight moves the output by > 1e-3)."""
    grid = ds.grids.logsnr(VP, 13)
    x = starts(VP, grid[0])
    got = ds.reverse(VP, GAUSS_SCORE, x.astype(np.float32), ts=grid, method=name, dtype=np.float32, **opts).x
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, twin_on_grid(VP, grid, name, opts, x), rtol=40 * 2.0**-24, atol=1e-6)


def test_a_user_callable_score_gets_the_stage_times():
    """A plain callable score(x, t) (no (m, s) columns) gives the table's
    output: the stage times t(lambda) are the process's."""
    grid = ds.grids.logsnr(OU, 9)
    x = starts(OU, grid[0])
    for name, opts in CONFIGS:
        a = ds.reverse(OU, exact_score(OU), x, ts=grid, method=name, **opts).x
        b = ds.reverse(OU, GAUSS_SCORE, x, ts=grid, method=name, **opts).x
        np.testing.assert_allclose(a, b, rtol=1e-9, err_msg=name)


# -- a grid ending at s = 0, chains ----------------------------------------------------

@pytest.mark.parametrize("order", [2, 3])
def test_dpm_solver_steps_to_s_zero_with_the_denoising_step(order):
    """On steps=N (t_end = 0, s(0) = 0 on VP) the last step is x' = m'/m (x + s^2 score),
    D(x~, sigma) in sigma-space; the others are the twin's order-k steps."""
    x = starts(VP, 1.0)
    run = ds.reverse(VP, GAUSS_SCORE, x, 10, method="dpm_solver", order=order)
    grid = np.linspace(1.0, 0.0, 11)
    sig, m = rs.sigma_space(VP, grid)
    D = rs.denoiser_from_score(exact_score(VP), VP)
    inner = rs.dpm_solver(D, x / m[0], sig[:-1], order=order)
    np.testing.assert_allclose(run.x, m[-1] * D(inner, sig[-2]), rtol=RTOL64)
    assert run.nfe == 9 * order + 1


@pytest.mark.parametrize("chain", [DDPM, SMLD], ids=["DDPM", "SMLD"])
@pytest.mark.parametrize("name,opts", CONFIGS, ids=IDS)
def test_on_a_chain_the_stages_sit_at_lambdas_between_its_indices(chain, name, opts):
    """On a chain's own grid, ending at index 0 (s = 0): a stage at lambda
    has sigma = e^-lambda (m = 1/sqrt(1 + sigma^2) on DDPM, 1 on SMLD), and
    a PRK middle stage the mean of the two lambdas; the twin on the chain's
    sigmas (dpm_solver: then the denoising step to index 0)."""
    view = chain.grid_view()
    sig, m = (view.sd / view.m)[::-1], view.m[::-1]
    lam = -np.log(sig[:-1])
    mid = np.exp(-0.5 * (lam[1:] + lam[:-1]))
    mid = np.r_[mid, 0.0]  # the last step's middle is never used (no PRK there)
    x = m[0] * (MU + math.sqrt(V0 + sig[0] ** 2) * np.linspace(-3, 3, 7)[:, None])
    D = rs.gaussian_denoiser(MU, V0)
    if name == "dpm_solver":
        want = m[-1] * D(twin_run(name, opts, sig[:-1], x / m[0], D), sig[-2])
    else:
        want = m[-1] * twin_run(name, opts, sig, x / m[0], D, mid)
    got = ds.reverse(chain, GAUSS_SCORE, x, method=name, **opts).x
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_on_a_ddpm_chain_a_callable_score_sees_the_interpolated_marginal():
    """Between chain indices, t is linear in lambda = -log sigma and
    m = 1/sqrt(1 + sigma^2), s = sigma m (k-diffusion's fractional timesteps):
    a callable score(x, t) computing that marginal itself gives the run with
    the table's (m, s) columns."""
    view = DDPM.grid_view()
    lam = np.log(view.m[1:]) - np.log(view.sd[1:])

    def score(x, t):
        sigma = math.exp(-np.interp(t, view.t[1:], lam))
        m = 1 / math.sqrt(1 + sigma * sigma)
        return GAUSS_SCORE.evaluate(x, m, sigma * m)

    x = starts(VP, 1.0)
    for name, opts in CONFIGS:
        a = ds.reverse(DDPM, score, x, method=name, **opts).x
        np.testing.assert_allclose(a, ds.reverse(DDPM, GAUSS_SCORE, x, method=name, **opts).x, rtol=1e-9,
                                   err_msg=name)


@pytest.mark.parametrize("name,opts", CONFIGS, ids=IDS)
def test_a_last_step_to_s_zero_lands_on_m_times_the_denoised_value(name, opts):
    """A path whose m(0) = 2 (data scaled by 2): the step to t = 0 ends at
    m(0) D(x~, sigma), in the process's own variables."""
    scaled = ds.AffineSDE(lambda t: 2 * np.exp(-t), lambda t: np.sqrt(-np.expm1(-2 * t)), T=3.0, name="scaled")
    grid = np.r_[ds.grids.logsnr(scaled, 12), 0.0]
    x = starts(scaled, grid[0])
    sig, m = rs.sigma_space(scaled, grid)
    D = rs.gaussian_denoiser(MU, V0)
    mid = rs.sigma_space(scaled, 0.5 * (grid[1:] + grid[:-1]))[0]
    if name == "dpm_solver":
        want = m[-1] * D(twin_run(name, opts, sig[:-1], x / m[0], D), sig[-2])
    else:
        want = m[-1] * twin_run(name, opts, sig, x / m[0], D, mid)
    got = ds.reverse(scaled, GAUSS_SCORE, x, ts=grid, method=name, **opts).x
    np.testing.assert_allclose(got, want, rtol=1e-9)


# -- aliases and counts ------------------------------------------------------------

def test_dpm_solver_order_one_is_ddim_to_rounding():
    """DPM-Solver-1 is DDIM (eta = 0) (Lu et al. 2022, section 4.1): against VP's own
    ddim, on a logSNR grid, on steps=N to t = 0, and on a DDPM chain, to 1e-12 relative."""
    x = starts(VP, 1.0)
    for kw in ({"ts": ds.grids.logsnr(VP, 20)}, {"steps": 20}):
        a = ds.reverse(VP, GAUSS_SCORE, x, method="dpm_solver", order=1, **kw).x
        b = ds.reverse(VP, GAUSS_SCORE, x, method="ddim", **kw).x
        np.testing.assert_allclose(a, b, rtol=1e-12)
    a = ds.reverse(DDPM, GAUSS_SCORE, x, method="dpm_solver", order=1).x
    np.testing.assert_allclose(a, ds.reverse(DDPM, GAUSS_SCORE, x, method="ddim").x, rtol=1e-12)


@pytest.mark.parametrize("name,opts,nfe", [
    ("dpm_solver", {"order": 1}, 20), ("dpm_solver", {"order": 2}, 40), ("dpm_solver", {}, 60),
    ("unipc", {}, 20), ("unipc", {"order": 3}, 20), ("plms", {}, 20 + 3 * 3), ("plms", {"warmup": "ab"}, 21)])
def test_score_evaluations_per_run(name, opts, nfe):
    """k per step for dpm_solver; one per step for unipc (UniC reuses the
    next predictor's evaluation); plms one per step plus 3 in each of the 3
    PRK steps, or 1 more in the first step with warmup='ab'."""
    table = ds.methods.table(VP, name, ds.grids.logsnr(VP, 20), **opts)
    assert table.nfe == nfe
    assert ds.methods.get(name).deterministic and table.n_noise_intervals == 0


# -- global orders against the closed-form flow map --------------------------------

def path_error(process, grid, name, opts):
    x = starts(process, grid[0])
    out = ds.reverse(process, GAUSS_SCORE, x, ts=grid, method=name, **opts).x
    return float(np.max(np.abs(out - rs.gaussian_flow_map(process, MU, V0, x, grid[0], grid[-1]))))


def fitted_order(process, grid_kind, name, opts, ladder, **grid_kw):
    errors = [path_error(process, getattr(ds.grids, grid_kind)(process, n, **grid_kw), name, opts) for n in ladder]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ds.analysis.OrderFitWarning)
        return ds.analysis.fit_order(ladder, errors)


LADDER = np.array([32, 64, 128, 256])

#: (process, grid, method, options, expected order, tolerance). Tolerances
#: cover the pre-asymptotic curvature measured over LADDER (the twins'
#: slopes between doublings approach the order from within 0.15 by 32 steps).
ORDERS = [
    (VP, "logsnr", "dpm_solver", {"order": 1}, 1, 0.12),
    (VP, "logsnr", "dpm_solver", {"order": 2}, 2, 0.12),
    (VP, "logsnr", "dpm_solver", {}, 3, 0.15),
    (EDM, "logsnr", "dpm_solver", {}, 3, 0.15),
    (OU, "logsnr", "dpm_solver", {}, 3, 0.15),
    # UniC lifts UniP-2 to order 3 (Zhao et al. 2023, Theorem 3.1)
    (VP, "logsnr", "unipc", {}, 3, 0.15),
    (EDM, "karras", "unipc", {}, 3, 0.15),
    (VP, "logsnr", "unipc", {"variant": "bh1"}, 3, 0.15),
    # without UniC, UniP-2 alone would be order 2: checked below through order=1 (UniP-1 + UniC-1 = 2)
    (VP, "logsnr", "unipc", {"order": 1}, 2, 0.12),
    # the fixed equal-step weights on unequal sigma steps: global order 2
    (VP, "logsnr", "plms", {}, 2, 0.15),
    (EDM, "karras", "plms", {"warmup": "ab"}, 2, 0.15),
]


@pytest.mark.parametrize("process,grid_kind,name,opts,order,tol", ORDERS,
                         ids=[f"{n}-{p.__class__.__name__}-{g}-{o}" for p, g, n, o, _, _ in ORDERS])
def test_fitted_global_orders(process, grid_kind, name, opts, order, tol):
    fit = fitted_order(process, grid_kind, name, opts, LADDER)
    assert abs(fit.order - order) < tol, fit
    # the 95% interval of the fit is narrow: the errors follow one power law
    assert fit.ci[1] - fit.ci[0] < 0.5, fit


def test_plms_is_fourth_order_on_equal_sigma_steps():
    """On EDM (sigma = t) the uniform grid has equal sigma steps, where the
    weights are Adams-Bashforth-4's: order 4 after the warm-up (the PRK
    steps are classical RK4 in sigma, also order 4). Over sigma 80 -> 10 at
    128..512 steps the slopes rise towards 4 (3.5, 3.7, 3.85 for the twin)."""
    ladder = np.array([128, 256, 512])
    for warmup in ("prk", "ab"):
        fit = fitted_order(EDM, "uniform", "plms", {"warmup": warmup}, ladder, t_end=10.0)
        assert 3.5 < fit.order < 4.2, (warmup, fit)


# -- options and errors ------------------------------------------------------------

@pytest.mark.parametrize("name,option,value,message", [
    ("dpm_solver", "order", 4, "order of method 'dpm_solver' must be 1, 2 or 3; got 4"),
    ("dpm_solver", "order", 2.0, "order of method 'dpm_solver' must be 1, 2 or 3; got 2.0"),
    ("dpm_solver", "order", True, "order of method 'dpm_solver' must be 1, 2 or 3; got True"),
    ("unipc", "order", 0, "order of method 'unipc' must be 1, 2 or 3; got 0"),
    ("unipc", "variant", "bh3", "variant of method 'unipc' must be 'bh2' or 'bh1'; got 'bh3'"),
    ("plms", "warmup", "rk4", "warmup of method 'plms' must be 'prk' or 'ab'; got 'rk4'"),
])
def test_bad_options_raise_naming_the_method(name, option, value, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        ds.reverse(VP, GAUSS_SCORE, np.zeros(3), 8, method=name, **{option: value})
    with pytest.raises(ValueError, match=f"^{message}$"):
        ds.methods.table(VP, name, 8, **{option: value})


def test_options_of_another_method_raise_naming_this_one():
    with pytest.raises(ValueError, match="^warmup='ab' applies to method='plms' only; got method='unipc' on VPSDE$"):
        ds.reverse(VP, GAUSS_SCORE, np.zeros(3), 8, method="unipc", warmup="ab")
    with pytest.raises(ValueError, match="got method='dpm_solver' on EDM$"):
        ds.reverse(EDM, GAUSS_SCORE, np.zeros(3), 8, method="dpm_solver", variant="bh1")


@pytest.mark.parametrize("option,value", [("order", 5), ("warmup", "x"), ("variant", 3)])
def test_a_bad_value_of_an_option_the_method_does_not_take_names_the_method_given(option, value):
    """Not the message of the method that has the option (dpm_solver's check
    said "order of method 'dpm_solver' must be ..." to a user of em)."""
    with pytest.raises(ValueError, match=rf"^{option}={value!r} applies to method=.* only; got method='em' on VPSDE$"):
        ds.reverse(VP, GAUSS_SCORE, np.zeros(3), 8, method="em", **{option: value})


@pytest.mark.parametrize("name", ["dpm_solver", "unipc", "plms"])
def test_grids_where_sigma_is_infinite_raise_naming_the_method(name):
    """RectifiedFlow at t = 1 has m = 0: sigma = s/m is infinite there."""
    with pytest.raises(ValueError, match=f"^method='{name}' works in sigma = s/m, which is infinite at t = 1.0"):
        ds.methods.table(ds.RectifiedFlow(), name, np.array([1.0, 0.5, 0.2, 0.1, 0.0]))


@pytest.mark.parametrize("warmup,n", [("prk", 3), ("ab", 1)])
def test_plms_warm_up_cannot_evaluate_at_s_zero(warmup, n):
    with pytest.raises(ValueError, match=f"^method='plms' with warmup='{warmup}' evaluates the score at the end"):
        ds.reverse(VP, GAUSS_SCORE, np.zeros(3), n, method="plms", warmup=warmup)


def test_tables_do_not_depend_on_how_the_run_is_cut():
    """A multistep table's registers carry across steps: the run with
    save_every=1 (cut into pieces where the table allows) is the run."""
    x = starts(VP, 1.0)
    grid = ds.grids.logsnr(VP, 17)
    for name, opts in CONFIGS:
        whole = ds.reverse(VP, GAUSS_SCORE, x, ts=grid, method=name, **opts)
        saved = ds.reverse(VP, GAUSS_SCORE, x, ts=grid, method=name, save_every=1, **opts)
        np.testing.assert_array_equal(saved.x, whole.x, err_msg=name)
