"""Derivation 002 ("DDPMs as SDEs", docs/derivations/002-ddpm-as-vp-sde.md):
the DDPM chain, its VP SDE limit, and the way back to the DDPM reverse
(ancestral) step, checked step by step.

Where the seed (the original text that page corrects) is loose the test's
docstring quotes it and the test states the correct version numerically. Data are Gaussian,
N(MU, V0), so the exact score is linear (ds.LinearScore) and every affine
sampler has an exact moment recursion (reference.table_moments); Monte Carlo
is held to 5 standard errors of that recursion, orders to +-0.15.
"""
import numpy as np
import pytest

import diffsde as ds

import reference
from conftest import GAUSS_SCORE as SCORE, MU, V0, VP, gaussian_marginal as marginal_law
from stats import assert_mean, assert_variance, fitted_slope

NS = np.array([64, 128, 256, 512, 1024])


def reverse_table(process, method, n=None, variance="beta", last_step_noise=False):
    """The table ds.reverse runs, and the grid view it is built on."""
    table = ds.methods.table(process, method, n, variance=variance, last_step_noise=last_step_noise)
    return table, ds.methods.view(process, method, n)


def start_law(law):
    """The exact marginal at t_start: no prior mismatch hides in the bias."""
    return marginal_law(law.m[-1], law.sd[-1])


def with_b(table, b):
    """The same affine steps with a different score coefficient b."""
    return ds.StepTable.affine(**{**table.affine_coefficients(), "b": b})


def moment_se(n, var):
    """5 standard errors of a sample mean and a sample variance of n Gaussians."""
    return 5 * np.sqrt(var / n), 5 * var * np.sqrt(2.0 / n)


# ---- Step 1 of the big picture: the forward chain and its SDE ---------------------


def test_step2_taylor_sqrt_one_minus_beta_is_second_order():
    """Seed: "sqrt(1 - beta_{i+1}) ~ 1 - beta_{i+1}/2 ... from the Taylor series
    sqrt(1 - x) = 1 - x/2 - x^2/8 - x^3/16 - ...".

    The neglected remainder is -beta^2/8 + O(beta^3): slope 2 in beta, and the
    seed's next coefficients -1/8 and -1/16 are right."""
    betas = 2.0 ** -np.arange(4, 14)
    first = np.sqrt(1 - betas) - (1 - betas / 2)
    assert fitted_slope(betas, np.abs(first)) == pytest.approx(2.0, abs=0.15)
    assert first[-1] / (-betas[-1] ** 2 / 8) == pytest.approx(1.0, abs=1e-3)
    second = np.sqrt(1 - betas) - (1 - betas / 2 - betas**2 / 8)
    assert fitted_slope(betas[:6], np.abs(second[:6])) == pytest.approx(3.0, abs=0.15)
    assert second[5] / (-betas[5] ** 3 / 16) == pytest.approx(1.0, abs=0.02)
    # on a DDPM chain from the VP SDE the per-step remainder is O(1/N^2)
    n = np.array([128, 256, 512, 1024, 2048])
    worst = [np.max(np.abs(np.sqrt(1 - c.betas) - (1 - c.betas / 2)))
             for c in (ds.DDPM.from_sde(VP, int(k)) for k in n)]
    assert fitted_slope(n, worst) == pytest.approx(-2.0, abs=0.15)


def test_step4_alpha_bar_tends_to_exp_minus_integrated_beta_at_first_order():
    """Seed: "beta_{i+1} -> beta(t)" in the limit. With beta_i = beta(t_i) T/N
    (DDPM.from_sde, rule="riemann"), abar_i = prod (1 - beta_j) tends to the
    VP marginal's e^{-int_0^{t_i} beta} at O(1/N) on the whole grid, and
    -log abar_N to int_0^T beta at O(1/N); rule="exact" hits it to rounding."""
    ns = np.array([32, 64, 128, 256, 512, 1024])
    sup_err = []
    for n in ns:
        chain = ds.DDPM.from_sde(VP, int(n))
        sup_err.append(np.max(np.abs(chain.alpha_bar - np.exp(-VP.integrated_beta(chain.t)))))
    assert fitted_slope(ns, sup_err) == pytest.approx(-1.0, abs=0.15)
    big = np.array([128, 256, 512, 1024, 2048, 4096])
    log_err = [abs(np.log(ds.DDPM.from_sde(VP, int(n)).alpha_bar[-1]) + VP.integrated_beta(1.0)) for n in big]
    assert fitted_slope(big, log_err) == pytest.approx(-1.0, abs=0.15)
    exact = ds.DDPM.from_sde(VP, 64, rule="exact")
    np.testing.assert_allclose(exact.alpha_bar, np.exp(-VP.integrated_beta(exact.t)), rtol=1e-12)


def test_step5_beta_T_is_not_near_one_alpha_bar_N_is_near_zero():
    """Seed: "beta_i in (0,1) and beta_T ~ 1 because we want x_T to be pure noise".

    Correct: it is abar_N = prod (1 - beta_i) ~ 0 that makes x_N noise. For
    DDPM.from_sde(VPSDE(), 1000) the last beta is beta(1)/1000 = 0.02, far
    from 1, while abar_N ~ 4e-5 (e^{-int beta} = 4.3e-5 for the SDE)."""
    chain = ds.DDPM.from_sde(ds.VPSDE(), 1000)
    assert chain.betas[-1] == pytest.approx(0.02, rel=1e-12)
    assert chain.betas.max() < 0.05
    assert chain.alpha_bar[-1] == pytest.approx(4.0e-5, rel=0.01)
    assert chain.alpha_bar[-1] < 1e-4
    m_N, s_N = chain.marginal_coefficients(1000)
    assert m_N < 0.01 and s_N > 0.9999  # x_N = m_N x_0 + s_N z is (almost) pure noise


def test_step5_variance_is_preserved_only_for_unit_variance_data():
    """Seed: "This is also called a variance-preserving SDE since it maintains
    constant variance throughout the diffusion process".

    Correct: Var x_t = m(t)^2 v0 + s(t)^2 = v0 e^{-B} + 1 - e^{-B}, constant
    only for v0 = 1 (in general the *bound* 1 is kept: Var x_t -> 1). The
    chain has the same property with abar_i in place of e^{-B}."""
    chain = ds.DDPM.from_sde(VP, 200)
    m, s = chain.marginal_coefficients(np.arange(201))
    np.testing.assert_allclose(m * m * 1.0 + s * s, 1.0, rtol=1e-12)
    quarter = m * m * 0.25 + s * s
    assert quarter[0] == 0.25 and quarter[-1] > 0.99  # from 0.25 up to ~1
    n = 100_000
    save = [50, 200]
    for v0 in (1.0, 0.25):
        x0 = MU + np.sqrt(v0) * ds.standard_normal(n, rng=1)
        tr = ds.forward(chain, x0, rng=2, save_at=save)
        for k, i in enumerate(save):
            var_i = m[i] ** 2 * v0 + s[i] ** 2
            assert_mean(tr.xs[k], m[i] * MU, np.sqrt(var_i))
            assert_variance(tr.xs[k], var_i)
            if v0 == 0.25:  # the variance moved away from 0.25 by many standard errors
                assert abs(np.var(tr.xs[k]) - v0) > 50 * v0 * np.sqrt(2.0 / n)
    # the VP SDE itself (exact transitions): the same for v0 = 0.25
    x0 = MU + np.sqrt(0.25) * ds.standard_normal(n, rng=1)
    x_t = ds.forward(VP, x0, steps=200, method="exact", rng=3, save_at=[0.25]).xs[0]
    m_sde, s_sde = VP.marginal_coefficients(0.25)
    assert_variance(x_t, m_sde**2 * 0.25 + s_sde**2)
    assert abs(np.var(x_t) - 0.25) > 50 * 0.25 * np.sqrt(2.0 / n)


# ---- Step 3 of the big picture: the reverse SDE discretized ------------------------


def test_step3_difference_x_t_minus_x_t_plus_dt_runs_time_backwards():
    """Seed: "dx ~ x_t - x_{t+Dt}", then "x_{t+Dt} = x_t + beta/2 x_t Dt +
    beta grad log p_t Dt + sqrt(beta Dt) eps".

    The update walks time *down*: read as the labels say (t -> t + Dt, from the
    data at t = 0) it does not produce the forward law p_T, and does not get
    closer as Dt -> 0; walked down from t_k to t_{k-1} with score at t_k it is
    exactly ds.reverse(method="em") and lands on the data."""
    m_T, s_T = VP.marginal_coefficients(1.0)
    p_T = marginal_law(m_T, s_T)
    for n in (200, 1000):
        grid = np.arange(n + 1) / n
        k = np.arange(n)  # t_k -> t_{k+1} as written
        h, beta = 1.0 / n, VP.beta(grid[k])
        m, s = VP.marginal_coefficients(grid[k])
        up = ds.StepTable.affine(1 + beta * h / 2, beta * h, np.sqrt(beta * h), t=grid[k], m=m, sd=s, interval=k)
        mean, var = reference.table_moments(up, MU, V0, MU, V0)
        assert abs(mean - p_T[0]) > 0.08  # ~0.10 against 0.0099 at both n
        down, law = reverse_table(VP, "em", n)
        kd = law.run_order()
        coef = down.affine_coefficients()
        np.testing.assert_allclose(coef["a"], 1 + VP.beta(grid[kd]) * h / 2, rtol=1e-12)
        np.testing.assert_allclose(coef["b"], VP.beta(grid[kd]) * h, rtol=1e-12)
        np.testing.assert_allclose(coef["c"], np.sqrt(VP.beta(grid[kd]) * h), rtol=1e-12)
        mean, var = reference.table_moments(down, *p_T, MU, V0)
        assert abs(mean - MU) < 0.01 and abs(var - V0) < 0.01


def test_step6_delta_t_equal_one_is_not_a_limit():
    """Seed: "Let Dt = 1 and t -> i for discrete time steps:
    x_{i+1} = x_i + beta_i/2 x_i + beta_i grad log p_i + sqrt(beta_i) eps".

    Dt = 1 is a relabelling, not a limit: the step is right when beta_i means
    the chain's beta(t_i) T/N (then it is reverse EM with h = T/N, to
    rounding, and converges to the data as N grows); with the rate beta(t)
    and a literal Dt = 1 the step diverges, and more steps make it worse."""
    for n in (64, 256):
        chain = ds.DDPM.from_sde(VP, n)
        table, law = reverse_table(chain, "em")
        beta_i = chain.betas[law.run_order() - 1]
        coef = table.affine_coefficients()
        np.testing.assert_allclose(coef["a"], 1 + beta_i / 2, rtol=1e-13)
        np.testing.assert_allclose(coef["b"], beta_i, rtol=1e-13)
        np.testing.assert_allclose(coef["c"], np.sqrt(beta_i), rtol=1e-13)
    biases = []
    for n in NS:
        table, law = reverse_table(ds.DDPM.from_sde(VP, int(n)), "em")
        mean, var = reference.table_moments(table, *start_law(law), MU, V0)
        biases.append(abs(mean - MU) + abs(var - V0))
    assert fitted_slope(NS, biases) == pytest.approx(-1.0, abs=0.15)
    literal = []
    for n in (10, 20, 40):
        grid = np.arange(n + 1) / n
        k = np.arange(n, 0, -1)
        beta = VP.beta(grid[k])  # the rate, with Dt = 1
        m, s = VP.marginal_coefficients(grid[k])
        table = ds.StepTable.affine(1 + beta / 2, beta, np.sqrt(beta), t=grid[k], m=m, sd=s, interval=k - 1)
        literal.append(reference.table_moments(table, *marginal_law(*VP.marginal_coefficients(1.0)), MU, V0)[1])
    assert literal[0] > 1e6 * V0 and literal[2] > literal[1] > literal[0]


def test_step7_reverse_em_reaches_the_data_law_at_first_order():
    """Seed step 7 (reverse EM of Anderson's SDE, read downwards) from the exact
    p_T with the exact score: output bias against the data law N(MU, V0) is
    O(1/N), and Monte Carlo agrees with the exact moment recursion."""
    biases = []
    for n in NS:
        table, law = reverse_table(VP, "em", int(n))
        mean, var = reference.table_moments(table, *start_law(law), MU, V0)
        biases.append(abs(mean - MU) + abs(var - V0))
    assert fitted_slope(NS, biases) == pytest.approx(-1.0, abs=0.15)
    n_paths, n = 200_000, 64
    table, law = reverse_table(VP, "em", n)
    mean0, var0 = start_law(law)
    x = mean0 + np.sqrt(var0) * ds.standard_normal(n_paths, rng=11)
    tr = ds.reverse(VP, SCORE, x, n, method="em", rng=12)
    mean, var = reference.table_moments(table, mean0, var0, MU, V0)
    assert_mean(tr.x, mean, np.sqrt(var))
    assert_variance(tr.x, var)
    assert abs(var - V0) > moment_se(n_paths, V0)[1]  # the O(1/N) bias is resolved at N = 64


# ---- Steps 8-10: from the score to the DDPM ancestral step -------------------------


def eps_model(chain, mu=MU, v0=V0):
    """The exact noise predictor of a chain: E[z | x_i] = -sqrt(1 - abar_i) grad log p_i."""
    def eps(x, t):
        i = int(round(t * chain.N / chain.T))
        m, s = chain.marginal_coefficients(i)
        return (s * (np.asarray(x) - m * mu)) / (m * m * v0 + s * s)
    return eps


def test_step8_eps_score_relation_needs_sqrt_one_minus_alpha_bar():
    """Seed: "Let eps_theta(x_i, i) = -grad log p_i(x) be our neural network
    prediction".

    Correct: eps_theta = -sqrt(1 - abar_i) grad log p_i. The eps model below
    is the exact noise predictor (least squares of z on x_i recovers it);
    ds.score_from_eps turns it into the exact score, and ancestral sampling
    with it matches the exact recursion; the seed's relation (score = -eps,
    too small by the factor sqrt(1 - abar_i)) samples a visibly wrong law."""
    n_steps, n = 100, 50_000
    chain = ds.DDPM.from_sde(VP, n_steps)
    eps = eps_model(chain)
    # eps is the regression of the noise on x_i
    i = 30
    m_i, s_i = chain.marginal_coefficients(i)
    x0 = MU + np.sqrt(V0) * ds.standard_normal(200_000, rng=21)
    z = ds.standard_normal(200_000, rng=22)
    x_i = m_i * x0 + s_i * z
    slope = np.polyfit(x_i - m_i * MU, z, 1)[0]
    big_v = m_i**2 * V0 + s_i**2
    resid = np.sqrt((1 - s_i**2 / big_v) / (big_v * x_i.size))
    assert abs(slope - s_i / big_v) < 5 * resid
    # score_from_eps reproduces the exact score, the seed's -eps does not
    good = ds.score_from_eps(eps, chain)
    x = np.linspace(-3, 3, 101)
    for k in (1, 30, 100):
        m, s = chain.marginal_coefficients(k)
        np.testing.assert_allclose(good(x, chain.t[k]), SCORE.evaluate(x, m, s), rtol=1e-12, atol=1e-12)
    m, s = chain.marginal_coefficients(1)
    assert np.max(np.abs(-eps(x, chain.t[1]) - SCORE.evaluate(x, m, s))) > 1.0

    def seed_score(v, t):
        return -eps(v, t)

    table, law = reverse_table(chain, "ancestral")
    mean0, var0 = start_law(law)
    x = mean0 + np.sqrt(var0) * ds.standard_normal(n, rng=23)
    exact_law = reference.table_moments(table, mean0, var0, MU, V0)
    coef = table.affine_coefficients()
    seed_law = reference.table_moments(with_b(table, coef["b"] * coef["sd"]), mean0, var0, MU, V0)
    right = ds.reverse(chain, good, x, method="ancestral", rng=24).x
    wrong = ds.reverse(chain, seed_score, x, method="ancestral", rng=24).x
    np.testing.assert_allclose(right, ds.reverse(chain, SCORE, x, method="ancestral", rng=24).x,
                               rtol=1e-10, atol=1e-12)
    assert_mean(right, exact_law[0], np.sqrt(exact_law[1]))
    assert_variance(right, exact_law[1])
    assert_mean(wrong, seed_law[0], np.sqrt(seed_law[1]))
    assert_variance(wrong, seed_law[1])
    assert abs(exact_law[1] - V0) < 0.01  # the sampler's O(1/N) bias: 0.2588 at N = 100
    assert seed_law[1] > 3 * V0  # the seed's law: variance 0.896
    assert abs(np.var(wrong) - V0) > 100 * V0 * np.sqrt(2.0 / n)  # ~400 SE from the data's 0.25


def test_step9_ancestral_step_is_the_seed_formula_with_exact_coefficients():
    """Seed step 9: "x = 1/sqrt(1 - beta_i) (x_i + beta_i grad log p_i) +
    sqrt(beta_i) z_i": the coefficients are those ds.reverse(method="ancestral")
    runs (variance="beta", with the seed's noise also on the last step:
    last_step_noise=True), with the score at t_i and noise interval i - 1."""
    chain = ds.DDPM.from_sde(VP, 50)
    table, law = reverse_table(chain, "ancestral", last_step_noise=True)
    i = law.run_order()
    beta = chain.betas[i - 1]
    coef = table.affine_coefficients()
    np.testing.assert_allclose(coef["a"], 1 / np.sqrt(1 - beta), rtol=1e-13)
    np.testing.assert_allclose(coef["b"], beta / np.sqrt(1 - beta), rtol=1e-13)
    np.testing.assert_allclose(coef["c"], np.sqrt(beta), rtol=1e-13)
    np.testing.assert_array_equal(coef["t"], chain.t[i])
    np.testing.assert_array_equal(coef["interval"], i - 1)


def test_step9_writes_x_i_plus_1_for_x_i_minus_1():
    """Seed step 9 calls the result "x_{i+1}"; it is x_{i-1}. For unit-variance
    data the ancestral step maps p_i exactly onto p_{i-1} (all i, to rounding;
    Monte Carlo at three indices); read upwards (x_i -> x_{i+1}, from the data)
    it ends with mean ~0.08 where p_N has 0.0064 (and ~0.106 against 0.0095
    at N = 1000: no better with more steps)."""
    n_steps, v0 = 100, 1.0
    chain = ds.DDPM.from_sde(VP, n_steps)
    score = ds.LinearScore(MU, v0)
    table, law = reverse_table(chain, "ancestral", last_step_noise=True)  # the seed's last step
    m, s = chain.marginal_coefficients(np.arange(n_steps + 1))
    start = marginal_law(m[-1], s[-1], v0=v0)
    history = reference.table_moments(table, *start, MU, v0, every_step=True)
    means = np.array([h[0] for h in history])  # after j steps: index n_steps - j
    np.testing.assert_allclose(means, m[::-1] * MU, rtol=1e-12)
    np.testing.assert_allclose([h[1] for h in history], 1.0, rtol=1e-12)
    assert np.min(np.abs(means[1:-1] - m[::-1][2:] * MU)) > 1e-4  # not the p_{i+1} mean
    n = 100_000
    x = start[0] + np.sqrt(start[1]) * ds.standard_normal(n, rng=31)
    save = [40, 30, 15]  # p_{i+1} lies 14-19 SE away there
    tr = ds.reverse(chain, score, x, method="ancestral", rng=32, save_at=save)
    np.testing.assert_allclose(tr.ts, chain.t[save])
    for k, i in enumerate(save):
        assert_mean(tr.xs[k], m[i] * MU, 1.0)
        assert_variance(tr.xs[k], 1.0)
        assert abs(tr.xs[k].mean() - m[i + 2] * MU) > 5 / np.sqrt(n)  # reading x_{i+1} fails
    # the update applied upwards, i -> i + 1 with the score at i, from p_0
    k = np.arange(n_steps)
    beta = chain.betas
    up = ds.StepTable.affine(1 / np.sqrt(1 - beta), beta / np.sqrt(1 - beta), np.sqrt(beta), t=chain.t[k],
                             m=m[k], sd=s[k], interval=k)
    mean_up, var_up = reference.table_moments(up, MU, v0, MU, v0)
    assert mean_up > 5 * m[-1] * MU and mean_up - m[-1] * MU > 20 / np.sqrt(n)


def test_step9_ancestral_sampling_reaches_the_data_law_at_first_order():
    """Ancestral sampling on DDPM.from_sde(VP, N), exact score, from the exact
    p_N: bias against N(MU, V0) is O(1/N); Monte Carlo agrees with the
    recursion within 5 standard errors."""
    biases = []
    for n in NS:
        table, law = reverse_table(ds.DDPM.from_sde(VP, int(n)), "ancestral")
        mean, var = reference.table_moments(table, *start_law(law), MU, V0)
        biases.append(abs(mean - MU) + abs(var - V0))
    assert fitted_slope(NS, biases) == pytest.approx(-1.0, abs=0.15)
    n_paths, n = 200_000, 64
    chain = ds.DDPM.from_sde(VP, n)
    table, law = reverse_table(chain, "ancestral")
    mean0, var0 = start_law(law)
    x = mean0 + np.sqrt(var0) * ds.standard_normal(n_paths, rng=41)
    tr = ds.reverse(chain, SCORE, x, method="ancestral", rng=42)
    mean, var = reference.table_moments(table, mean0, var0, MU, V0)
    assert_mean(tr.x, mean, np.sqrt(var))
    assert_variance(tr.x, var)
    assert abs(var - V0) > moment_se(n_paths, V0)[1]


def test_step10_eps_coefficient_needs_sqrt_one_minus_alpha_bar():
    """Seed: "x_{i-1} = 1/sqrt(1 - beta_i) (x_i - beta_i/sqrt(1 - beta_i)
    eps_theta(x_i, i)) + sigma_i z_i".

    Correct: beta_i / sqrt(1 - abar_i). With the exact eps model and
    sigma_i^2 = beta_i, the corrected step, run in NumPy on the same normals,
    is the DDPM ancestral sampler path by path; the seed's coefficient scales
    the score term beta_i s by sqrt(1 - abar_i)/sqrt(1 - beta_i) and samples
    a law far from the data (its own recursion, confirmed by Monte Carlo)."""
    n_steps, n = 100, 50_000
    chain = ds.DDPM.from_sde(VP, n_steps)
    eps = eps_model(chain)
    abar, betas = chain.alpha_bar, chain.betas
    table, law = reverse_table(chain, "ancestral", last_step_noise=True)  # the seed's sigma_1 z_1
    mean0, var0 = start_law(law)
    x = mean0 + np.sqrt(var0) * ds.standard_normal(n, rng=51)
    z = ds.standard_normal((n_steps, n), rng=52)

    def sample(seed_coefficient):
        y = x.copy()
        for i in range(n_steps, 0, -1):
            b = betas[i - 1]
            coef = b / np.sqrt(1 - b) if seed_coefficient else b / np.sqrt(1 - abar[i])
            y = (y - coef * eps(y, chain.t[i])) / np.sqrt(1 - b) + np.sqrt(b) * z[i - 1]
        return y

    ancestral = ds.reverse(chain, SCORE, x, method="ancestral", noise=z, last_step_noise=True).x
    fixed, seed = sample(False), sample(True)
    np.testing.assert_allclose(fixed, ancestral, rtol=1e-10, atol=1e-12)
    # the seed's step is ancestral with score coefficient beta sqrt(1 - abar)/(1 - beta)
    i = law.run_order()
    seed_b = betas[i - 1] * np.sqrt(1 - abar[i]) / (1 - betas[i - 1])
    seed_law = reference.table_moments(with_b(table, seed_b), mean0, var0, MU, V0)
    assert_mean(seed, seed_law[0], np.sqrt(seed_law[1]))
    assert_variance(seed, seed_law[1])
    exact_law = reference.table_moments(table, mean0, var0, MU, V0)
    assert_variance(fixed, exact_law[1])
    assert abs(np.var(seed) - V0) > 100 * V0 * np.sqrt(2.0 / n)  # ~0.85 against 0.25
    assert np.sqrt(np.mean((seed - ancestral) ** 2)) > 0.3  # ~0.47 path by path
