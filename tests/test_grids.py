"""ds.grids (time grids of reverse runs) and the timestep spacings of chain.respace."""
import numpy as np
import pytest

import diffsde as ds
from diffsde import grids

from conftest import GAUSS_SCORE, SUB, VE, VP

EDM = ds.EDM()
RF = ds.RectifiedFlow()
#: A user path known only through m and s (numerical derivatives and inverses):
#: an Ornstein-Uhlenbeck path on [0, 3].
OU = ds.AffineSDE(lambda t: np.exp(-t), lambda t: np.sqrt(-np.expm1(-2 * t)), T=3.0, name="OU")
PROCESSES = [VP, SUB, VE, EDM, RF, OU]
SPACINGS = [grids.uniform, grids.logsnr, grids.quadratic, grids.karras]


def _id(p):
    return type(p).__name__ if p is not OU else "AffineSDE"


@pytest.mark.parametrize("process", PROCESSES, ids=_id)
@pytest.mark.parametrize("spacing", SPACINGS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("n", [1, 2, 7, 100])
def test_every_grid_decreases_strictly_with_exact_default_ends(process, spacing, n):
    g = spacing(process, n)
    assert g.shape == (n + 1,) and g.dtype == np.float64
    assert g[0] == process.default_t_start and g[-1] == process.default_t_end
    assert np.all(np.diff(g) < 0)
    assert 0 <= g[-1] and g[0] <= process.T


@pytest.mark.parametrize("spacing", SPACINGS, ids=lambda f: f.__name__)
def test_given_ends_are_kept_exactly(spacing):
    # ends that the formulas do not reproduce in float64: 0.2 + (0.9 - 0.2) * 1 != 0.9
    assert 0.2 + (0.9 - 0.2) * 1.0 != 0.9
    g = spacing(VP, 13, t_start=0.9, t_end=0.2)
    assert g[0] == 0.9 and g[-1] == 0.2


def test_default_ends_per_process():
    assert VP.default_t_end == 1e-3 and SUB.default_t_end == 1e-3 and RF.default_t_end == 1e-3
    assert VE.default_t_end == 1e-5
    assert EDM.default_t_end == EDM.sigma_min == 0.002
    assert OU.default_t_end == 3e-3
    assert RF.default_t_start == 1 - 1e-3 and VP.default_t_start == 1.0


@pytest.mark.parametrize("process", PROCESSES, ids=_id)
def test_uniform_is_equally_spaced_in_t_and_the_steps_grid(process):
    n = 50
    g = grids.uniform(process, n)
    t0, t1 = process.default_t_start, process.default_t_end
    k = np.arange(n + 1)
    np.testing.assert_allclose(g, t0 + (t1 - t0) * k / n, rtol=1e-15, atol=1e-15 * process.T)
    # reverse(steps=n)'s grid, walked downwards, from its second point on (its first
    # point is computed as t_end + (t_start - t_end) n/n, which need not be t_start)
    steps_grid = (t1 + (t0 - t1) * (np.arange(n + 1) / n))[::-1]
    np.testing.assert_array_equal(g[1:], steps_grid[1:])


@pytest.mark.parametrize("process", PROCESSES, ids=_id)
def test_logsnr_is_equally_spaced_in_lambda(process):
    n = 40
    g = grids.logsnr(process, n)
    lam = process.lambda_of_t(g)
    np.testing.assert_allclose(np.diff(lam), np.full(n, (lam[-1] - lam[0]) / n), rtol=0, atol=1e-12)
    assert lam[-1] > lam[0]


def test_exponential_is_the_logsnr_grid_equally_spaced_in_log_sigma():
    assert grids.exponential is grids.logsnr
    g = grids.exponential(EDM, 30)
    np.testing.assert_allclose(np.diff(np.log(g)), np.log(EDM.sigma_min / EDM.sigma_max) / 30, rtol=1e-13)


def test_logsnr_closed_form_on_vp():
    """lambda = -log(e^B - 1)/2, B = 0.1 t + 9.95 t^2: invert by hand."""
    n = 10
    g = grids.logsnr(VP, n)
    lam_end = [-0.5 * np.log(np.expm1(0.1 * t + 9.95 * t * t)) for t in (1.0, 1e-3)]
    lam = lam_end[0] + (lam_end[1] - lam_end[0]) * np.arange(n + 1) / n
    big_b = np.log1p(np.exp(-2 * lam))
    t = (-0.1 + np.sqrt(0.01 + 4 * 9.95 * big_b)) / (2 * 9.95)
    np.testing.assert_allclose(g, t, rtol=1e-12)


def test_karras_on_edm_is_eq5_of_karras_et_al():
    n, rho = 18, 7.0
    g = grids.karras(EDM, n)
    i = np.arange(n + 1)
    smax, smin = 80.0, 0.002
    eq5 = (smax ** (1 / rho) + i / n * (smin ** (1 / rho) - smax ** (1 / rho))) ** rho
    assert g[0] == 80.0 and g[-1] == 0.002
    np.testing.assert_array_equal(g[1:-1], eq5[1:-1])
    np.testing.assert_allclose(g, eq5, rtol=1e-14)


@pytest.mark.parametrize("process", PROCESSES, ids=_id)
@pytest.mark.parametrize("rho", [1.0, 3.0, 7.0])
def test_karras_follows_eq5_in_the_process_sigma(process, rho):
    n = 25
    g = grids.karras(process, n, rho=rho)
    sig = process.sigma_of_t(g)
    lo, hi = sig[-1] ** (1 / rho), sig[0] ** (1 / rho)
    # the formula itself cancels to about 1e-16 of hi near sigma_min
    np.testing.assert_allclose(sig ** (1 / rho), hi + np.arange(n + 1) / n * (lo - hi), rtol=1e-11, atol=1e-14 * hi)


def test_karras_sigma_on_ve_is_s_over_m_not_score_sde_sigma():
    g = grids.karras(VE, 8, sigma_min=0.05, sigma_max=20.0)
    # s/m = sqrt(sigma(t)^2 - sigma_min^2) hits the given ends, not sigma(t)
    np.testing.assert_allclose(np.sqrt(VE.sigma(g[[0, -1]]) ** 2 - 0.01 ** 2), [20.0, 0.05], rtol=1e-12)
    assert abs(VE.sigma(g[-1]) - 0.05) > 1e-4


def test_karras_sigma_min_zero_ends_at_the_data():
    g = grids.karras(VP, 10, sigma_min=0.0)
    assert g[-1] == 0.0 and np.all(np.diff(g) < 0)
    g = grids.karras(EDM, 10, t_end=0.0)
    assert g[-1] == 0.0 and g[-2] == pytest.approx((80 ** (1 / 7) * 0.1) ** 7, rel=1e-13)


def test_rectified_flow_karras_in_closed_form():
    """sigma = t/(1 - t) there, so t = sigma/(1 + sigma)."""
    n = 12
    g = grids.karras(RF, n)
    smax, smin = 0.999 / 0.001, 1e-3 / 0.999
    sig = (smax ** (1 / 7) + np.arange(n + 1) / n * (smin ** (1 / 7) - smax ** (1 / 7))) ** 7
    np.testing.assert_allclose(g, sig / (1 + sig), rtol=1e-12)


def test_quadratic_is_ddim_quadratic_spacing():
    n = 20
    g = grids.quadratic(VP, n)
    k = np.arange(n, -1, -1)
    np.testing.assert_allclose(g, 1e-3 + 0.999 * (k / n) ** 2, rtol=1e-15)
    np.testing.assert_allclose(np.sqrt(g - 1e-3), np.sqrt(0.999) * k / n, rtol=1e-12, atol=1e-15)


def test_a_grid_drives_reverse_through_ts():
    g = grids.logsnr(VP, 64)
    tr = ds.reverse(VP, GAUSS_SCORE, np.zeros((4, 1)), ts=g, method="ode_heun", save_every=1)
    np.testing.assert_array_equal(tr.ts, g)


@pytest.mark.parametrize("spacing", SPACINGS, ids=lambda f: f.__name__)
def test_bad_input_raises_naming_the_argument(spacing):
    with pytest.raises(ValueError, match=r"n must be an int >= 1; got 0"):
        spacing(VP, 0)
    with pytest.raises(TypeError, match=r"n must be an int >= 1; got 2\.5"):
        spacing(VP, 2.5)
    with pytest.raises(ValueError, match=r"t_start must lie in \(0, T\] = \(0, 1\]; got 1\.5"):
        spacing(VP, 4, t_start=1.5)
    with pytest.raises(ValueError, match=r"t_end must lie in \[0, t_start\) = \[0, 0\.5\); got 0\.5"):
        spacing(VP, 4, t_start=0.5, t_end=0.5)
    with pytest.raises(ValueError, match=r"t_end must be finite; got nan"):
        spacing(VP, 4, t_end=float("nan"))
    with pytest.raises(TypeError, match=r"t_start must be a real number"):
        spacing(VP, 4, t_start="1")
    with pytest.raises(TypeError, match=r"chain.*respace\(M, spacing="):
        spacing(ds.DDPM.linear(100), 4)
    with pytest.raises(TypeError, match=r"process protocol.*got int"):
        spacing(3, 4)


def test_logsnr_needs_finite_lambda_at_the_ends():
    with pytest.raises(ValueError, match=r"t_end = 0\.0 has lambda = log\(m/s\) = inf.*give t_end > 0"):
        grids.logsnr(VP, 4, t_end=0.0)
    with pytest.raises(ValueError, match=r"t_start = 1\.0 has lambda = log\(m/s\) = -inf.*give t_start < T"):
        grids.logsnr(RF, 4, t_start=1.0)


def test_karras_bad_input():
    with pytest.raises(ValueError, match=r"rho must be finite and > 0; got 0\.0"):
        grids.karras(EDM, 4, rho=0.0)
    with pytest.raises(ValueError, match=r"either as sigma_min or as t_end, not both; got 0\.01 and 0\.01"):
        grids.karras(EDM, 4, sigma_min=0.01, t_end=0.01)
    with pytest.raises(ValueError, match=r"sigma_min must be finite and >= 0; got -1\.0"):
        grids.karras(EDM, 4, sigma_min=-1.0)
    with pytest.raises(ValueError, match=r"sigma must lie in \[0, 80\]"):
        grids.karras(EDM, 4, sigma_max=100.0)
    with pytest.raises(ValueError, match=r"sigma = s/m is infinite at t_start = 1\.0"):
        grids.karras(RF, 4, t_start=1.0)


# -- chain.respace(M, spacing): diffusers' timestep spacings -----------------

def _diffusers_timesteps(N, M, spacing, offset=0):
    """The timesteps tau of diffusers' set_timesteps (DDIMScheduler, PNDMScheduler),
    written from their documented definitions, decreasing."""
    if spacing == "linspace":
        tau = np.linspace(0, N - 1, M).round()[::-1]
    elif spacing == "leading":
        tau = (np.arange(0, M) * (N // M)).round()[::-1] + offset
    else:
        tau = np.round(np.arange(N, 0, -N / M)) - 1
    return tau.astype(np.int64)


def _ties(N, M):
    """Positions k (1..M) where k N / M is a half-integer, in exact integer arithmetic."""
    k = np.arange(1, M + 1)
    return k[((2 * k * N) % M == 0) & ((2 * k * N // M) % 2 == 1)]


@pytest.mark.parametrize("spacing", ["trailing", "leading", "linspace"])
def test_respace_keeps_diffusers_timesteps_plus_one(spacing):
    for N in (1, 7, 10, 15, 50, 999, 1000):
        for M in sorted({1, 2, 3, 4, 6, 7, 10, 13, 25, 48, 50, 333, N} & set(range(1, N + 1))):
            tau = _diffusers_timesteps(N, M, spacing)
            ddpm = ds.DDPM.linear(N)
            new = ddpm.respace(M, spacing)
            idx = np.r_[0, np.sort(tau + 1)]
            if spacing == "trailing":
                # diffusers' arange may overshoot to tau = -1 (M + 1 values), and its
                # rounding error breaks ties either way: ours are half to even
                idx = np.r_[0, idx[idx > 0]]
                ties = _ties(N, M)
                exact = 2 * ties * N // M  # 2 k N / M, odd
                ours = np.where((exact // 2) % 2 == 0, exact // 2, exact // 2 + 1)
                assert np.all(np.abs(idx[ties] - ours) <= 1)
                idx[ties] = ours
            assert new.N == M
            # beta' = 1 - abar_i/abar_j goes through log1p/expm1: compare in log abar
            np.testing.assert_allclose(np.log(new.alpha_bar), np.log(ddpm.alpha_bar[idx]), rtol=1e-12, atol=1e-12)
            sm = ds.SMLD(np.geomspace(0.01, 50, N), 0.005)
            np.testing.assert_array_equal(sm.respace(M, spacing).sigmas, sm.sigmas[idx[1:] - 1])


def test_respace_leading_with_steps_offset_as_stable_diffusion():
    ddpm = ds.DDPM.linear(1000)
    new = ddpm.respace(50, "leading", steps_offset=1)
    idx = np.r_[0, np.sort(_diffusers_timesteps(1000, 50, "leading", 1) + 1)]
    assert idx[1] == 2 and idx[-1] == 982
    np.testing.assert_allclose(np.log(new.alpha_bar), np.log(ddpm.alpha_bar[idx]), rtol=1e-12, atol=1e-12)


def test_respace_default_is_trailing_and_todays_bits():
    """Before spacings existed, respace kept i_j = round(j N / M): same betas, bit for bit."""
    ddpm = ds.DDPM.from_sde(VP, 1000)
    sm = ds.SMLD.from_sde(VE, 1000)
    for M in (1, 3, 10, 64, 333, 1000):
        idx = np.round(np.arange(M + 1) * (1000 / M)).astype(np.int64)
        log_ab = np.log(ddpm.alpha_bar)[idx]
        old = -np.expm1(np.diff(np.r_[0.0, np.cumsum(np.log1p(-ddpm.betas))][idx]))
        np.testing.assert_array_equal(ddpm.respace(M).betas, old)
        np.testing.assert_array_equal(ddpm.respace(M, "trailing").betas, old)
        assert np.allclose(np.log(ddpm.respace(M).alpha_bar), log_ab, rtol=1e-12)
        np.testing.assert_array_equal(sm.respace(M).sigmas, np.r_[sm.sigma0, sm.sigmas][idx[1:]])


def test_respace_bad_spacing():
    ddpm = ds.DDPM.linear(100)
    with pytest.raises(ValueError, match=r"spacing must be 'trailing', 'leading' or 'linspace'; got 'uniform'"):
        ddpm.respace(10, "uniform")
    with pytest.raises(ValueError, match=r"steps_offset applies to spacing='leading' only"):
        ddpm.respace(10, "trailing", steps_offset=1)
    with pytest.raises(ValueError, match=r"steps_offset must be in \[0, 9\].*got 10"):
        ddpm.respace(10, "leading", steps_offset=10)
    with pytest.raises(ValueError, match=r"M must be an int in \[1, N\] = \[1, 100\]; got 101"):
        ddpm.respace(101, "linspace")
