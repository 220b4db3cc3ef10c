"""VP, VE and sub-VP SDEs: closed forms against quadrature, the moment ODEs
and sampled paths."""
import numpy as np
import pytest
from scipy import integrate, stats

import diffsde as ds

from conftest import SUB, VE, VP
from stats import assert_mean, assert_variance, fitted_slope

SDES = {
    "vp": VP,
    "vp_T2": ds.VPSDE(0.5, 8.0, T=2.0),
    "cosine": ds.VPSDE.cosine(),
    "from_betas": ds.VPSDE.from_betas(np.linspace(1e-3, 0.05, 40)),
    "subvp": SUB,
    "ve": VE,
    "from_sigmas": ds.VESDE.from_sigmas(np.geomspace(0.02, 20.0, 33), T=1.5),
}


def quad(f, a, b, breaks=()):
    pts = [p for p in breaks if a < p < b]
    return integrate.quad(f, a, b, points=pts or None, limit=500, epsabs=1e-13, epsrel=1e-12)[0]


@pytest.mark.parametrize("name", ["vp", "vp_T2", "cosine", "from_betas", "subvp"])
def test_integrated_beta_matches_quadrature(name):
    sde = SDES[name]
    breaks = np.arange(41) * sde.T / 40 if name == "from_betas" else ()
    for t in np.linspace(0, sde.T, 7)[1:]:
        expected = quad(lambda u: float(sde.beta(u)), 0.0, t, breaks)
        assert sde.integrated_beta(t) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("name", sorted(SDES))
def test_marginals_solve_the_moment_odes(name):
    """dm/dt = f m and d(s^2)/dt = 2 f s^2 + g^2, integrated independently."""
    sde = SDES[name]
    T = sde.T

    def rhs(t, y):
        f = float(sde.drift_coefficient(t))
        return [f * y[0], 2 * f * y[1] + float(sde.diffusion(t)) ** 2]

    t_eval = np.linspace(0, T, 9)
    kinks = np.arange(41) * T / 40 if name in ("from_betas",) else np.arange(33) * T / 32 if name == "from_sigmas" else None
    if kinks is None:
        sol = integrate.solve_ivp(rhs, (0, T), [1.0, 0.0], t_eval=t_eval, rtol=1e-11, atol=1e-13, method="DOP853")
        y = sol.y
    else:  # integrate piece by piece across the schedule's kinks
        y0 = [1.0, 0.0]
        pieces = np.unique(np.r_[kinks, t_eval])
        out = {0.0: y0}
        for a, b in zip(pieces[:-1], pieces[1:]):
            y0 = integrate.solve_ivp(rhs, (a, b), y0, rtol=1e-11, atol=1e-13, method="DOP853").y[:, -1]
            out[b] = y0
        y = np.array([out[min(out, key=lambda k: abs(k - t))] for t in t_eval]).T
    m, s = sde.marginal_coefficients(t_eval)
    np.testing.assert_allclose(m, y[0], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(s**2, y[1], rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("name", ["vp", "cosine", "subvp", "ve"])
def test_small_t_keeps_relative_precision(name):
    sde = SDES[name]
    t = 1e-12
    m, s = sde.marginal_coefficients(t)
    g2 = float(sde.diffusion(0.0)) ** 2
    if name == "subvp":  # s = 1 - e^{-B} ~ B = beta(0) t
        expected = float(sde.beta(0.0)) * t
    else:  # s^2 ~ g(0)^2 t
        expected = np.sqrt(g2 * t)
    assert s == pytest.approx(expected, rel=1e-6)
    assert s > 0 and m <= 1.0


@pytest.mark.parametrize("name", sorted(SDES))
def test_exact_paths_have_the_marginal_moments(name):
    """10^5 paths of method="exact": mean and variance within 5 standard errors."""
    sde = SDES[name]
    n, x0 = 100_000, 1.5
    tr = ds.forward(sde, np.full(n, x0), steps=8, method="exact", rng=3, save_every=4)
    m, s = sde.marginal_coefficients(tr.ts)
    for k in range(1, len(tr.ts)):
        assert_mean(tr.xs[k], m[k] * x0, s[k])
        assert_variance(tr.xs[k], s[k] ** 2)


def affine_moments(table, mean, var):
    """The moment recursion of an affine, score-free table."""
    coef = table.affine_coefficients()
    for a, c in zip(coef["a"], coef["c"]):
        mean, var = a * mean, a * a * var + c * c
    return mean, var


@pytest.mark.parametrize("name", ["vp", "subvp", "ve", "cosine"])
def test_forward_em_bias_is_first_order(name):
    # The cosine beta reaches 999 near T, where Euler-Maruyama needs h < 2/999
    # to be stable at all; a lower clip shows the asymptotic order at these N.
    sde = ds.VPSDE.cosine(max_beta=20.0) if name == "cosine" else SDES[name]
    v0 = 0.3
    errors, ns = [], np.array([64, 128, 256, 512, 1024])
    m_T, s_T = sde.marginal_coefficients(sde.T)
    exact_var = m_T**2 * v0 + s_T**2
    for n in ns:
        grid = np.linspace(0, sde.T, n + 1)
        _, var = affine_moments(ds.methods.table(sde, "em", grid, direction="forward"), 1.0, v0)
        errors.append(abs(var - exact_var))
    assert fitted_slope(ns, errors) == pytest.approx(-1.0, abs=0.15)
    # and the simulation follows the recursion it was derived from
    n = 200_000
    x0 = 1.0 + np.sqrt(v0) * ds.standard_normal(n, rng=1)
    table = ds.methods.table(sde, "em", np.linspace(0, sde.T, 33), direction="forward")
    mean, var = affine_moments(table, 1.0, v0)
    x = ds.forward(sde, x0, steps=32, rng=2).x
    assert_mean(x, mean, np.sqrt(var))
    assert_variance(x, var)


def test_perturb_samples_the_marginal_with_per_row_times():
    sde = SDES["vp"]
    n = 100_000
    t = np.where(np.arange(n) % 2 == 0, 0.2, 0.9)
    x0 = np.full((n, 2), [1.0, -3.0])
    xt = sde.perturb(x0, t, rng=4)
    for tt in (0.2, 0.9):
        rows = t == tt
        m, s = sde.marginal_coefficients(tt)
        assert_mean(xt[rows], m * x0[0], s)
        assert_variance(xt[rows], s**2)
    np.testing.assert_array_equal(sde.perturb(x0, t, rng=4), xt)
    assert sde.perturb(x0.astype(np.float32), 0.5, rng=1).dtype == np.float32


@pytest.mark.parametrize("name", ["vp", "subvp", "ve"])
def test_prior_sample_and_logp(name):
    sde = SDES[name]
    s_T = sde.marginal_coefficients(sde.T)[1]
    z = sde.prior_sample((100_000,), rng=5)
    assert_mean(z, 0.0, s_T)
    assert_variance(z, s_T**2)
    x = np.random.default_rng(0).standard_normal((7, 3, 2))
    expected = stats.norm(0, s_T).logpdf(x).reshape(7, -1).sum(axis=1)
    np.testing.assert_allclose(sde.prior_logp(x), expected, rtol=1e-12)
    assert sde.prior_sample((4,), rng=1, dtype=np.float32).dtype == np.float32


def test_drift_diffusion_and_per_row_time():
    sde = SDES["vp"]
    x = np.arange(6.0).reshape(3, 2)
    t = np.array([0.1, 0.5, 0.9])
    expected = -0.5 * (0.1 + 19.9 * t)[:, None] * x
    np.testing.assert_allclose(sde.drift(x, t), expected, rtol=1e-15)
    np.testing.assert_allclose(sde.diffusion(t), np.sqrt(0.1 + 19.9 * t), rtol=1e-15)
    with pytest.raises(ValueError, match=r"shape \(batch,\)"):
        sde.drift(x, np.array([0.1, 0.2]))
    sub = SDES["subvp"]
    big_b = sub.integrated_beta(0.5)
    assert sub.diffusion(0.5) ** 2 == pytest.approx(sub.beta(0.5) * (1 - np.exp(-2 * big_b)), rel=1e-14)
    ve = SDES["ve"]
    assert ve.diffusion(0.3) ** 2 == pytest.approx(2 * np.log(5000) * ve.sigma(0.3) ** 2, rel=1e-13)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0, 2.0])
def test_reverse_sde_object(alpha):
    sde = SDES["vp"]
    score = lambda x, t: -x / 0.7  # noqa: E731
    rev = sde.reverse(score, alpha)
    x = np.linspace(-2, 2, 5)
    g2 = sde.diffusion(0.4) ** 2
    np.testing.assert_allclose(rev.drift(x, 0.4), sde.drift(x, 0.4) - 0.5 * (1 + alpha**2) * g2 * score(x, 0.4))
    assert rev.diffusion(0.4) == pytest.approx(alpha * np.sqrt(g2))


def test_cosine_schedule_is_clipped_consistently():
    sde = ds.VPSDE.cosine(s=0.008, max_beta=50.0)
    t_clip = sde.schedule.t_clip
    assert 0 < t_clip < 1
    assert sde.beta(0.999) == 50.0
    assert sde.beta(t_clip * 0.999) < 50.0
    # B stays the integral of the clipped beta past the clip time
    assert sde.integrated_beta(1.0) - sde.integrated_beta(t_clip) == pytest.approx(50.0 * (1 - t_clip), rel=1e-12)
    abar = np.cos((0.5 + 0.008) / 1.008 * np.pi / 2) ** 2 / np.cos(0.008 / 1.008 * np.pi / 2) ** 2
    assert sde.marginal_coefficients(0.5)[0] ** 2 == pytest.approx(abar, rel=1e-12)


def test_bad_schedules_raise_with_the_argument_named():
    with pytest.raises(ValueError, match="beta_min"):
        ds.VPSDE(beta_min=0.0)
    with pytest.raises(ValueError, match="beta_max"):
        ds.SubVPSDE(beta_max=-1.0)
    with pytest.raises(ValueError, match="sigma_max must exceed sigma_min"):
        ds.VESDE(sigma_min=1.0, sigma_max=1.0)
    with pytest.raises(ValueError, match="T must be"):
        ds.VPSDE(T=0.0)
    with pytest.raises(ValueError, match="betas must be"):
        ds.VPSDE.from_betas([0.1, -0.1])
    with pytest.raises(ValueError, match="increase strictly"):
        ds.VESDE.from_sigmas([0.1, 0.3, 0.2])
    with pytest.raises(ValueError, match=r"t must lie in \[0, T\]"):
        ds.VPSDE().marginal_coefficients(1.5)
    with pytest.raises(ValueError, match="alpha"):
        ds.VPSDE().reverse(lambda x, t: x, alpha=-1)
    with pytest.raises(TypeError, match="callable"):
        ds.VPSDE().reverse("score")
