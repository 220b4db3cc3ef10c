"""Adaptive Dormand-Prince 5(4): reverse(method="rk45") and
log_likelihood(method="rk45").

With Gaussian data N(mu, Sigma) the probability-flow map is known in closed
form: the marginal at t is N(m_t mu, Sigma_t), Sigma_t = m_t^2 Sigma + s_t^2 I,
and the flow keeps Sigma_t^{-1/2} (x_t - m_t mu) constant (all Sigma_t share
Sigma's eigenvectors), so x_t1 = m_t1 mu + Sigma_t1^{1/2} Sigma_t0^{-1/2}
(x_t0 - m_t0 mu). The log-density at 0 is the data's own.
"""
import math
from fractions import Fraction

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import diffsde as ds
from diffsde.methods import _rk45

VP = ds.VPSDE()
MU = np.array([0.5, -1.0])
COV = np.array([[0.3, 0.1], [0.1, 0.2]])
GM = ds.GaussianMixture([1.0], MU[None], COV[None])
X_T = VP.prior_sample((200, 2), rng=1)


def _root(t, inverse=False):
    m, s = VP.marginal_coefficients(t)
    w, v = np.linalg.eigh(m * m * COV + s * s * np.eye(2))
    return v @ np.diag(w ** (-0.5 if inverse else 0.5)) @ v.T, m


def flow(x, t0, t1):
    """The exact probability-flow map from t0 to t1 for the data GM."""
    a0, m0 = _root(t0, inverse=True)
    a1, m1 = _root(t1)
    return (x - m0 * MU) @ (a1 @ a0).T + m1 * MU


def velocity(t, y, shape=X_T.shape):
    """The same ODE, flattened, for SciPy: f x - g^2/2 s(x, t)."""
    x = y.reshape(shape)
    v = VP.drift_coefficient(t) * x - 0.5 * VP.diffusion(t) ** 2 * GM.score(VP)(x, t)
    return v.reshape(-1)


# ---- the tableau --------------------------------------------------------------------

def test_the_tableau_has_its_declared_orders_and_is_fsal():
    """Row sums give the nodes; b satisfies the order conditions of the
    bushy trees up to order 5 and b* up to 4 (but not 5); the last row is
    b (first same as last); the continuous extension is y at theta = 0
    and the step's y_new at theta = 1."""
    c, a, b, bh = _rk45.C_NODES, _rk45.A_MATRIX, _rk45.B_WEIGHTS, _rk45.B_EMBEDDED
    for i, row in enumerate(a):
        assert sum(row) == c[i]
    assert tuple(a[-1]) + (0,) == tuple(b)
    for k in range(_rk45.ORDER):
        assert sum(bi * ci**k for bi, ci in zip(b, c)) == Fraction(1, k + 1)
    for k in range(_rk45.ERROR_ORDER):
        assert sum(bi * ci**k for bi, ci in zip(bh, c)) == Fraction(1, k + 1)
    assert sum(bi * ci**4 for bi, ci in zip(bh, c)) != Fraction(1, 5)
    # the classic tree condition sum b_i a_ij c_j = 1/6 (order 3)
    assert sum(b[i] * sum(a[i][j] * c[j] for j in range(len(a[i]))) for i in range(7)) == Fraction(1, 6)
    w = _rk45.dense_weights([0.0, 1.0])
    np.testing.assert_array_equal(w[0], 0.0)
    np.testing.assert_allclose(w[1], _rk45.B, rtol=0, atol=1e-15)


def test_the_registry_records_rk45():
    rec = ds.methods.get("rk45")
    assert (rec.kind, rec.deterministic, rec.order, rec.nfe_per_step, rec.streams) == ("ode", True, 5.0, 6, ())
    assert {o.name: o.default for o in rec.options} == {"rtol": 1e-5, "atol": 1e-5}
    assert "rk45" in ds.methods.available(ds.EDM()) and "rk45" in ds.methods.available(ds.DDPM.linear(10))
    with pytest.raises(ValueError, match="method 'rk45' is adaptive"):
        ds.methods.table(VP, "rk45", 10)


# ---- accuracy ----------------------------------------------------------------------

TOLS = [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9]


@pytest.fixture(scope="module")
def sweep():
    ref = flow(X_T, 1.0, 1e-3)
    runs = [ds.reverse(VP, GM, X_T, method="rk45", rtol=tol, atol=tol) for tol in TOLS]
    return ref, runs


def test_the_error_follows_the_tolerance_over_six_decades(sweep):
    """max |x - flow| <= 5 tol at every tolerance (measured: 0.18 to 1.9
    tol), and log error against log tol has slope 1 within 0.2 (measured
    about 1.0)."""
    ref, runs = sweep
    errors = np.array([np.abs(tr.x - ref).max() for tr in runs])
    assert np.all(errors <= 5 * np.array(TOLS)), errors / TOLS
    slope = np.polyfit(np.log10(TOLS), np.log10(errors), 1)[0]
    assert 0.8 <= slope <= 1.2, slope
    nfe = [tr.nfe for tr in runs]
    assert nfe == sorted(nfe) and nfe[-1] > 4 * nfe[0]


def test_rk45_beats_fixed_step_heun_at_equal_nfe(sweep):
    """At each tolerance Heun with nfe / 2 steps (the same score
    evaluations) is at least 10 times further from the exact flow."""
    ref, runs = sweep
    for tol, tr in zip(TOLS, runs):
        heun = ds.reverse(VP, GM, X_T, tr.nfe // 2, method="ode_heun", t_end=1e-3)
        assert np.abs(heun.x - ref).max() > 10 * np.abs(tr.x - ref).max(), tol


def test_the_default_end_is_where_the_process_grids_end():
    """t_end=None stops at process.default_t_end, as the grids do (score_sde's
    eps: 1e-3 T on VP, 1e-5 T on VE; sigma_min on EDM), not one number for
    every process."""
    for process in (ds.VPSDE(), ds.VESDE(), ds.EDM()):
        tr = ds.reverse(process, ds.LinearScore(0.0, 1.0), np.zeros((3, 1)), method="rk45")
        assert tr.ts[-1] == process.default_t_end, type(process).__name__


def test_the_counts_add_up(sweep):
    """nfe = 1 (f at t_start) + 1 (the first-step probe) + 6 per attempted
    step; the step sizes span [t_end, t_start]; fixed-grid runs report None."""
    for tr in sweep[1]:
        assert tr.nfe == 2 + 6 * (tr.accepted + tr.rejected)
        assert len(tr.step_sizes) == tr.accepted and np.all(tr.step_sizes < 0)
        assert math.isclose(tr.step_sizes.sum(), 1e-3 - 1.0, rel_tol=0, abs_tol=1e-14)
        np.testing.assert_array_equal(tr.ts, [1.0, 1e-3])
        np.testing.assert_array_equal(tr.xs[-1], tr.x)
        np.testing.assert_array_equal(tr.xs[0], X_T)
    fixed = ds.reverse(VP, GM, X_T, 4, method="ode_heun")
    assert (fixed.accepted, fixed.rejected, fixed.step_sizes) == (None, None, None)


@pytest.mark.parametrize("tol", [1e-3, 1e-5, 1e-8])
def test_rk45_agrees_with_scipy_on_the_flattened_ode(tol):
    """The batch flattened into one ODE, as score_sde solves it:
    solve_ivp(method="RK45") at the same rtol/atol. Both use the same pair
    and the standard controller, so the results agree within 10 tol (two
    different adaptive solvers may differ by tens of tolerances) and nfe
    within 10% (measured: equal)."""
    tr = ds.reverse(VP, GM, X_T, method="rk45", rtol=tol, atol=tol)
    ref = solve_ivp(velocity, (1.0, 1e-3), X_T.reshape(-1), method="RK45", rtol=tol, atol=tol)
    assert ref.success
    np.testing.assert_allclose(tr.x, ref.y[:, -1].reshape(X_T.shape), rtol=0, atol=10 * tol)
    assert abs(tr.nfe - ref.nfev) <= 0.1 * ref.nfev, (tr.nfe, ref.nfev)


def test_save_at_takes_any_time_by_dense_output():
    """save_at times off any grid: the order-4 continuous extension is
    within 30 tol of the exact flow (measured 12.6 tol: the interpolant is
    one order below the steps) and is SciPy's dense output on the same
    steps (within 1e-10; measured 3e-14); ts run from t_start down; a time
    equal to t_end is the final state."""
    tol = 1e-6
    times = [0.9, 0.37, 0.5, 1e-3, 0.05]
    tr = ds.reverse(VP, GM, X_T, method="rk45", rtol=tol, atol=tol, save_at=times)
    np.testing.assert_array_equal(tr.ts, sorted(times, reverse=True))
    ref = solve_ivp(velocity, (1.0, 1e-3), X_T.reshape(-1), method="RK45", rtol=tol, atol=tol, dense_output=True)
    for t, x in zip(tr.ts, tr.xs):
        np.testing.assert_allclose(x, flow(X_T, 1.0, t), rtol=0, atol=30 * tol)
        np.testing.assert_allclose(x, ref.sol(t).reshape(X_T.shape), rtol=0, atol=1e-10)
    np.testing.assert_array_equal(tr.xs[-1], tr.x)
    # dense output does not change the steps
    plain = ds.reverse(VP, GM, X_T, method="rk45", rtol=tol, atol=tol)
    np.testing.assert_array_equal(plain.x, tr.x)
    assert plain.nfe == tr.nfe


def test_a_callable_score_and_other_processes():
    """A Python score runs the same register programs (same bits as the
    built-in score to rounding of the score), on VE and on a DDPM chain
    (through chain.as_sde())."""
    tol = 1e-6
    fused = ds.reverse(VP, GM, X_T, method="rk45", rtol=tol, atol=tol)
    python = ds.reverse(VP, lambda x, t: GM.score(VP)(x, t), X_T, method="rk45", rtol=tol, atol=tol)
    np.testing.assert_allclose(python.x, fused.x, rtol=0, atol=1e-12)
    ve = ds.VESDE()
    x = ve.prior_sample((50, 2), rng=3)
    tr = ds.reverse(ve, GM, x, method="rk45", rtol=tol, atol=tol, t_end=0.01)
    m0, s0 = ve.marginal_coefficients(1.0)
    m1, s1 = ve.marginal_coefficients(0.01)
    w, v = np.linalg.eigh(COV)
    scale = v @ np.diag(np.sqrt((m1**2 * w + s1**2) / (m0**2 * w + s0**2))) @ v.T
    np.testing.assert_allclose(tr.x, (x - MU) @ scale.T + MU, rtol=0, atol=30 * tol * np.abs(x).max())
    chain = ds.DDPM.linear(100)
    np.testing.assert_array_equal(ds.reverse(chain, GM, X_T, method="rk45").x,
                                  ds.reverse(chain.as_sde(), GM, X_T, method="rk45").x)


# ---- stiff ends, failures ----------------------------------------------------------

@pytest.mark.parametrize("var,t_end", [(1e-6, 1e-5), (1e-8, 1e-7)])
def test_a_stiff_end_runs_to_tolerance(var, t_end):
    """Data of tiny variance, t_end near 0: the ODE's rate g^2/(2 var_t)
    grows to ~10^7, and rk45 still ends within 10 tol of the exact map
    (measured 5e-6 and 1.7e-5, i.e. up to 1.7 tol), rejecting steps rather
    than failing."""
    data = ds.GaussianMixture([1.0], MU[None], (var * np.eye(2))[None])
    tr = ds.reverse(VP, data, X_T, method="rk45", t_end=t_end)
    m, s = VP.marginal_coefficients(t_end)
    m1, s1 = VP.marginal_coefficients(1.0)
    exact = m * MU + np.sqrt((m * m * var + s * s) / (m1 * m1 * var + s1 * s1)) * (X_T - m1 * MU)
    np.testing.assert_allclose(tr.x, exact, rtol=0, atol=10 * 1e-5)
    assert tr.rejected > 0 and tr.accepted > 20


def test_a_step_size_underflow_raises_naming_time_and_tolerances():
    """dx/dt = -x^2 backwards from x = 2 at t = 1 blows up at t = 0.5: a
    clear FloatingPointError, as SciPy's 'Required step size is less than
    spacing between numbers'."""
    ve = ds.VESDE()

    def score(x, t):
        return 2 * x**2 / ve.diffusion(t) ** 2

    with pytest.raises(FloatingPointError, match=r"^rk45: the step size underflowed at t = 0\.4999.*rtol = "
                                                 r"1e-05, atol = 1e-05.*stop further from it \(t_end\) or loosen"):
        ds.reverse(ve, score, np.full((3, 1), 2.0), method="rk45")


def test_a_non_finite_score_names_the_rk45_step():
    """nonfinite="raise": the engine's error gets a note naming the rk45
    step (its own step count is the program's rows); "ignore": the
    non-finite steps are rejected until the step size underflows at the
    edge of the bad region, t = 0.5."""
    def bad(x, t):
        return np.full_like(x, np.nan) if t < 0.5 else -x

    with pytest.raises(FloatingPointError, match="the score returned a non-finite value") as info:
        ds.reverse(VP, bad, np.ones((3, 2)), method="rk45")
    assert any(note.startswith("diffsde: in rk45's register program for the step from t = ")
               for note in info.value.__notes__)
    with pytest.raises(FloatingPointError, match=r"^rk45: the step size underflowed at t = 0\.5"):
        ds.reverse(VP, bad, np.ones((3, 2)), method="rk45", nonfinite="ignore")


def test_the_same_bits_for_one_and_two_threads():
    """A batch big enough for the engine to use threads (12,000 elements):
    the steps and states are the same bits (the error norm is one NumPy
    sum in a fixed order)."""
    x = VP.prior_sample((6000, 2), rng=5)
    previous = ds.set_num_threads(1)
    try:
        one = ds.reverse(VP, GM, x, method="rk45", save_at=[0.3])
        ds.set_num_threads(2)
        two = ds.reverse(VP, GM, x, method="rk45", save_at=[0.3])
    finally:
        ds.set_num_threads(previous)
    np.testing.assert_array_equal(one.x, two.x)
    np.testing.assert_array_equal(one.xs, two.xs)
    np.testing.assert_array_equal(one.step_sizes, two.step_sizes)


def test_a_run_does_not_modify_its_input_and_fills_out():
    x = X_T.copy()
    x.flags.writeable = False
    out = np.empty_like(x)
    tr = ds.reverse(VP, GM, x, method="rk45", out=out)
    assert tr.x is out
    np.testing.assert_array_equal(x, X_T)
    np.testing.assert_array_equal(out, ds.reverse(VP, GM, X_T, method="rk45").x)


@pytest.mark.parametrize("kwargs,error,pattern", [
    ({"t_end": 0.0}, ValueError, r"^t_end of method='rk45' must lie in \(0, t_start\) = \(0, 1\).*default_t_end, 0.001\); "
                                 r"got 0.0$"),
    ({"steps": 10}, ValueError, "^steps does not apply to method='rk45'"),
    ({"ts": [1.0, 0.5]}, ValueError, "^ts does not apply to method='rk45'"),
    ({"save_every": 2}, ValueError, "^save_every does not apply to method='rk45'"),
    ({"corrector": "langevin"}, ValueError, "^corrector does not apply to method='rk45'"),
    ({"noise": np.zeros((4, 200, 2))}, ValueError, r"^noise does not apply to method='rk45' \(it is deterministic"),
    ({"progress": True}, ValueError, "^progress does not apply to method='rk45'"),
    ({"save_at": [3]}, TypeError, "^save_at of method='rk45' must be times"),
    ({"save_at": [1.5]}, ValueError, r"^save_at times of method='rk45' must lie in \[t_end, t_start\] = "
                                     r"\[0.001, 1\]; got 1.5$"),
    ({"rtol": 1e-16}, ValueError, "^rtol must be >= 10 eps of float64"),
    ({"atol": 0.0}, ValueError, "^atol must be"),
    ({"rtol": "a"}, TypeError, "^rtol must be"),
])
def test_bad_arguments_raise_naming_them(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        ds.reverse(VP, GM, X_T, method="rk45", **kwargs)


def test_tolerances_apply_to_rk45_only_and_dask_is_refused():
    with pytest.raises(ValueError, match="^rtol=0.001 applies to method='rk45' only; got method='ode_heun'"):
        ds.reverse(VP, GM, X_T, 10, method="ode_heun", rtol=1e-3)
    da = pytest.importorskip("dask.array")
    with pytest.raises(TypeError, match="does not run on dask arrays: its step sizes depend on the whole batch"):
        ds.reverse(VP, GM, da.from_array(X_T, chunks=50), method="rk45")


# ---- likelihood --------------------------------------------------------------------

X_DATA = np.random.default_rng(2).normal(size=(200, 2)) * 2


def _exact_prior(x):
    return GM.marginal_law(VP, VP.T).logpdf(x)


def test_the_likelihood_at_score_sdes_tolerance_is_within_0_01_nats():
    """rtol = atol = 1e-5 (score_sde's) with the exact prior p_T: at most
    0.01 nats from the data's log-density (measured 1.8e-3; at 1e-8:
    2.8e-6), where fixed-step Heun with 50 steps is off by 0.84 and uses
    twice rk45's evaluations (100 against 50)."""
    exact = GM.logpdf(X_DATA)
    ll = ds.log_likelihood(VP, GM, X_DATA, method="rk45", prior=_exact_prior)
    assert np.abs(ll - exact).max() < 0.01
    tight = ds.log_likelihood(VP, GM, X_DATA, method="rk45", rtol=1e-8, atol=1e-8, prior=_exact_prior)
    assert np.abs(tight - exact).max() < 1e-4
    heun = ds.log_likelihood(VP, GM, X_DATA, 50, prior=_exact_prior)
    assert np.abs(heun - exact).max() > 0.5


def test_the_likelihood_of_a_callable_score_by_hutchinson():
    """A diagonal Gaussian's score has a diagonal Jacobian, so every
    Rademacher probe gives the exact trace (e^T J e = tr J): Hutchinson
    with finite differences matches the exact divergence to the tolerance."""
    diag = ds.GaussianMixture([1.0], MU[None], np.diag([0.3, 0.2])[None])
    exact = ds.log_likelihood(VP, diag, X_DATA, method="rk45", rtol=1e-7, atol=1e-7)
    callable_ = ds.log_likelihood(VP, lambda x, t: diag.score(VP)(x, t), X_DATA, method="rk45", rtol=1e-7,
                                  atol=1e-7, rng=0, n_probes=1)
    np.testing.assert_allclose(callable_, exact, rtol=0, atol=1e-5)


def test_likelihood_options_are_checked():
    with pytest.raises(ValueError, match="^rtol applies to method='rk45' only"):
        ds.log_likelihood(VP, GM, X_DATA, rtol=1e-3)
    with pytest.raises(ValueError, match="^steps applies to method='heun' only"):
        ds.log_likelihood(VP, GM, X_DATA, 10, method="rk45")
    with pytest.raises(ValueError, match="^method must be 'heun' or 'rk45'; got 'euler'$"):
        ds.log_likelihood(VP, GM, X_DATA, method="euler")
