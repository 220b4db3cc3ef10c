"""Derivation 003 ("Diffusion Models from SDE Perspective", in Chinese;
docs/derivations/003-euler-maruyama-wiener.md): the DDPM chain read as the
Euler-Maruyama template of the VP SDE, its Gaussian noise as Wiener
increments, and the reverse SDE, checked step by step.

Where the seed (the original text that page corrects) is loose the test's
docstring quotes it and the test states the correct version numerically. Tolerances: 5 standard
errors for sample moments, +-0.15 for fitted orders; every seed is fixed.
"""
import numpy as np
import pytest

import diffsde as ds
from diffsde import analysis

from conftest import GAUSS_SCORE as SCORE, MU, V0, VP
from stats import assert_mean, assert_variance, fitted_slope

LADDER = np.array([32, 64, 128, 256, 512])
N_PATHS = 4000


def chain_with(rule, n, sde=VP):
    """DDPM on t_i = i T/N with beta_i = beta(t_i) T/N ("right", derivation 001 and
    DDPM.from_sde rule="riemann") or beta(t_{i-1}) T/N ("left", derivation 003)."""
    t = sde.T * np.arange(n + 1) / n
    return ds.DDPM(sde.beta(t[1:] if rule == "right" else t[:-1]) * (sde.T / n), sde.T)


# ---- Step 4: Gaussian noise as Wiener increments -----------------------------------


def test_step4_brownian_increments_have_the_wiener_law():
    """Seed: "sqrt(Dtau) eps_{t-1} =d W_{tau_t} - W_{tau_{t-1}} ... increments
    independent, N(0, h I)".

    ds.BrownianPath's increments over 64 steps of [0, T = 2]: mean 0 and
    variance h = T/64 in every step (5 SE), pairwise uncorrelated across steps
    (every one of the 2016 correlations within 5/sqrt(n)), Gaussian fourth
    moment 3 h^2 (5 SE), and the same path at a coarser level sums the fine
    increments, so every resolution sees one Wiener path."""
    n, steps, T = 20_000, 64, 2.0
    h = T / steps
    path = ds.BrownianPath((n,), 8, rng=3)
    dw = path.increments(steps, T)
    assert dw.shape == (steps, n)
    assert_mean(dw, 0.0, np.sqrt(h), axis=1)
    assert_variance(dw, h, axis=1)
    corr = np.corrcoef(dw)
    off = corr[np.triu_indices(steps, 1)]
    assert np.max(np.abs(off)) < 5 / np.sqrt(n)
    fourth = np.mean(dw**4)
    assert abs(fourth - 3 * h * h) < 5 * np.sqrt(96.0 / dw.size) * h * h
    np.testing.assert_allclose(path.increments(steps // 4, T),
                               dw.reshape(steps // 4, 4, n).sum(axis=1), rtol=0, atol=1e-12)
    np.testing.assert_allclose(path.normals(steps), dw / np.sqrt(h), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw.sum(axis=0), np.sqrt(T) * path.values(0)[1], atol=1e-12)
    assert_variance(dw.sum(axis=0), T)  # W(T) ~ N(0, T)


# ---- Step 3: the chain step is the Euler-Maruyama template -------------------------


def test_step3_one_chain_step_is_em_up_to_higher_order():
    """Seed: "x_t - x_{t-1} = -1/2 beta_t x_{t-1} + sqrt(beta_t) eps + O(Dtau^2) x",
    with beta_t = beta(tau_{t-1}) Dtau, "(tau_t or tau_{t-1} both work at first
    order, the difference is higher order)".

    One step at t = 0.5: with the left point (derivation 003) the chain's drift
    coefficient differs from EM's by O(h^2) and its noise coefficient is EM's
    exactly; with the right point (derivation 001) the drift still differs by
    O(h^2) and the noise coefficient by O(h^{3/2})."""
    n = 2 ** np.arange(5, 15)
    gaps = {}
    for rule in ("left", "right"):
        drift, noise = [], []
        for k in n:
            k = int(k)
            chain = chain_with(rule, k)
            em = ds.methods.table(VP, "em", chain.t, direction="forward").affine_coefficients()
            a, c = chain.step_coefficients()
            i = k // 2  # the step t_{k/2} -> t_{k/2 + 1}
            drift.append(abs(a[i] - em["a"][i]))
            noise.append(abs(c[i] - em["c"][i]))
        gaps[rule] = (np.array(drift), np.array(noise))
    assert fitted_slope(n, gaps["left"][0]) == pytest.approx(-2.0, abs=0.15)
    assert np.max(gaps["left"][1]) < 1e-15
    assert fitted_slope(n, gaps["right"][0]) == pytest.approx(-2.0, abs=0.15)
    assert fitted_slope(n, gaps["right"][1]) == pytest.approx(-1.5, abs=0.15)


def test_step3_left_and_right_beta_evaluation_are_both_first_order():
    """Derivation 003 uses beta(tau_{t-1}) where derivation 001 uses beta(t_i): both chains
    converge to the VP SDE at first order: sum beta_i -> int beta, the chain
    marginals (sqrt(abar_i), 1 - abar_i) -> (m(t_i), s(t_i)^2) uniformly on
    the grid, and, driven by the same draws as EM on the SDE, the chain's
    paths merge with EM's at O(1/N); DDPM.from_sde(rule="riemann") is the
    right-point chain and rule="exact" has the VP marginals to rounding."""
    ns = np.array([32, 64, 128, 256, 512, 1024])
    b_total = VP.integrated_beta(VP.T)
    x0 = MU + np.sqrt(V0) * ds.standard_normal(N_PATHS, rng=5)
    for rule in ("left", "right"):
        sums, marg = [], []
        for n in ns:
            chain = chain_with(rule, int(n))
            sums.append(abs(chain.betas.sum() - b_total))
            m, s = chain.marginal_coefficients(np.arange(n + 1))
            m_sde, s_sde = VP.marginal_coefficients(chain.t)
            marg.append(np.max(np.abs(m - m_sde) + np.abs(s**2 - s_sde**2)))
        assert fitted_slope(ns, sums) == pytest.approx(-1.0, abs=0.15)
        assert fitted_slope(ns, marg) == pytest.approx(-1.0, abs=0.15)
        paths = ns[1:]
        gaps = [np.sqrt(np.mean((ds.forward(chain_with(rule, int(n)), x0, rng=7).x
                                 - ds.forward(VP, x0, steps=int(n), rng=7).x) ** 2)) for n in paths]
        assert fitted_slope(paths, gaps) == pytest.approx(-1.0, abs=0.15)
    right = ds.DDPM.from_sde(VP, 100)
    np.testing.assert_allclose(right.betas, chain_with("right", 100).betas, rtol=1e-15)
    exact = ds.DDPM.from_sde(VP, 100, rule="exact")
    np.testing.assert_allclose(exact.marginal_coefficients(np.arange(101))[0], VP.marginal_coefficients(exact.t)[0], rtol=1e-12)
    # the chains' own paths have their marginals (one Monte Carlo check of each)
    for chain in (chain_with("left", 64), right):
        x_N = ds.forward(chain, x0, rng=8).x
        m, s = chain.marginal_coefficients(chain.N)
        assert_mean(x_N, m * MU, np.sqrt(m * m * V0 + s * s))
        assert_variance(x_N, m * m * V0 + s * s)


def vp_closed_form(t, beta_min=0.1, beta_max=20.0):
    """(m(t), s(t)) of VP(0.1, 20) written out here: B = beta_min t + (beta_max - beta_min) t^2/2,
    m = e^{-B/2}, s^2 = 1 - e^{-B} (Song et al. 2021, eq. 29), independent of the package."""
    big_b = beta_min * t + 0.5 * (beta_max - beta_min) * t * t
    return np.exp(-0.5 * big_b), np.sqrt(-np.expm1(-big_b))


def test_step3_em_template_has_strong_order_one_forward():
    """EM on the VP SDE (additive noise): strong order 1 on one Brownian path
    against 8192 steps, N = 32 .. 512. The order alone would also hold for a
    consistent but wrong SDE (the reference is the same method refined), so
    the 8192-step run must also land on the closed-form marginal."""
    x0 = MU + np.sqrt(V0) * ds.standard_normal(N_PATHS, rng=11)
    study = analysis.strong_error(VP, x0, LADDER, rng=12)
    assert study.reference_steps == 8192
    assert study.fit.order == pytest.approx(1.0, abs=0.15)
    assert np.all(study.errors > 5 * study.stderr)
    big = MU + np.sqrt(V0) * ds.standard_normal(100_000, rng=19)
    fine = ds.forward(VP, big, 8192, rng=20).x
    m, s = vp_closed_form(VP.T)
    assert_mean(fine, m * MU, np.sqrt(m * m * V0 + s * s))
    assert_variance(fine, m * m * V0 + s * s)


def test_step3_em_template_has_weak_order_one_forward():
    """Seed: "first-order weak accuracy is enough" (构造一阶弱精度 SDE 足够):
    EM's error in E|x_T|^2 is O(1/N), from coupled differences on one path."""
    x0 = MU + np.sqrt(V0) * ds.standard_normal(N_PATHS, rng=13)
    study = analysis.weak_error(VP, x0, LADDER, rng=14)
    assert study.fit.order == pytest.approx(1.0, abs=0.15)
    assert np.all(study.errors > 5 * study.stderr)


# ---- Step 5: the reverse SDE ----------------------------------------------------------


def test_step5_reverse_em_has_strong_and_weak_order_one():
    """Seed step 5's reverse SDE dx = (-beta x/2 - beta grad log q) dtau +
    sqrt(beta) dW-bar, "dtau going in the decreasing direction", discretized
    by EM from T down to t_end = 1e-2 with the exact score, from the exact
    p_T: strong and weak order 1, N = 32 .. 512 against 8192 steps."""
    m, s = VP.marginal_coefficients(VP.T)
    x_T = m * MU + np.sqrt(m * m * V0 + s * s) * ds.standard_normal(N_PATHS, rng=15)
    kw = dict(score=SCORE, direction="reverse", t_end=1e-2)
    strong = analysis.strong_error(VP, x_T, LADDER, rng=16, **kw)
    assert strong.fit.order == pytest.approx(1.0, abs=0.15)
    assert np.all(strong.errors > 5 * strong.stderr)
    weak = analysis.weak_error(VP, x_T, LADDER, rng=17, **kw)
    assert weak.fit.order == pytest.approx(1.0, abs=0.15)
    assert np.all(weak.errors > 5 * weak.stderr)
    # and the reference itself lands on p_{t_end} (5 SE)
    tr = ds.reverse(VP, SCORE, x_T, 512, t_end=1e-2, rng=18)
    m0, s0 = vp_closed_form(1e-2)
    assert_mean(tr.x, m0 * MU, np.sqrt(m0 * m0 * V0 + s0 * s0))
    assert_variance(tr.x, m0 * m0 * V0 + s0 * s0)
