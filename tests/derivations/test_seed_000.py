"""Derivation 000 (SMLD as SDE, docs/derivations/000-smld-as-ve-sde.md),
checked step by step; "the seed" is the original text that page corrects.

The seed takes the SMLD/NCSN chain x_i = x_{i-1} + sqrt(sigma_i^2 - sigma_{i-1}^2) z
to the VE SDE dx = sqrt(d sigma^2/dt) dW (step 1), writes Anderson's reverse
SDE dx = -g^2 grad log p_t dt + g dW (step 2) and discretizes it back onto the
chain's increments, x_{i-1} = x_i + (sigma_i^2 - sigma_{i-1}^2) s + sqrt(...) z
(step 3: method "reverse_diffusion").

Data are Gaussian, N(MU, V0), so the score is exactly linear
(``ds.LinearScore``) and every affine sampler's output moments follow from the
affine recursion m <- (a + b l) m + b r, v <- (a + b l)^2 v + c^2. Tolerances
are 5 standard errors of the sample (tests/stats.py) or a fitted order
+- 0.15; every seed is fixed.

The seed's slips (the page's "Where the original is loose") each get a test stating the correct
version numerically: "i = t/N" means t = i/N; step 3.2 flips both signs of
the reverse increment and step 3.3 flips them back; the seed's
alpha(t) = d sigma^2/dt is not the API's ``alpha``.
"""
import numpy as np
import pytest

import diffsde as ds

import reference
from conftest import GAUSS_SCORE as SCORE, LADDER, MU, ORDER_TOL, V0, VE, data_marginal
from stats import assert_mean, assert_variance, fitted_slope

# With sigma_min far below the data's scale the first-order error term of
# reverse Euler-Maruyama on VE is tiny and a second-order one dominates up to
# N ~ 10^3 (tests/test_reverse.py); order fits of em's own bias use this one.
VE_ORDER = ds.VESDE(1.0, 10.0)
N_PATHS = 100_000


def start_at_T(sde, n, rng):
    """n samples of the exact marginal at T (no prior mismatch in the figures)."""
    mean, var = data_marginal(sde, sde.T)
    return mean + np.sqrt(var) * ds.standard_normal(n, rng=rng)


def reverse_table(sde, method, n, alpha=1.0):
    """The package's per-step table of a reverse run with n steps."""
    return ds.methods.table(sde, method, n, alpha=alpha)


def exact_output_moments(sde, method, n, alpha=1.0):
    """Exact output (mean, var) of a reverse run started at the exact marginal at T."""
    return reference.table_moments(reverse_table(sde, method, n, alpha), *data_marginal(sde, sde.T), MU, V0)


def seed_step3_moments(sde, n, drift_sign=1.0):
    """Moments after the seed's step 3.4, x_{i-1} = x_i + d_i s + sqrt(d_i) z with
    d_i = sigma(t_i)^2 - sigma(t_{i-1})^2, computed here from the schedule
    alone (independent of diffsde.methods); ``drift_sign=-1`` is step 3.2's
    drift sign."""
    t = np.arange(n + 1) * (sde.T / n)
    sigma2 = sde.sigma(t) ** 2
    mean, var = data_marginal(sde, sde.T)
    for i in range(n, 0, -1):
        d = sigma2[i] - sigma2[i - 1]
        big_v = V0 + sde.marginal_coefficients(t[i])[1] ** 2            # exact score: (MU - x) / big_v
        a = 1.0 - drift_sign * d / big_v
        mean, var = a * mean + drift_sign * d * MU / big_v, a * a * var + d
    return mean, var


# ---- step 1: the SMLD chain is the VE SDE discretized -------------------------------


def test_step1_1_index_i_sits_at_time_i_over_N_not_i_equals_t_over_N():
    """The seed writes "Map discrete index i to continuous time t: i = t/N"
    with Delta t = 1/N. The mapping that makes the chain the VE SDE on [0, 1]
    is t_i = i/N (i = t N): chain state i has the SDE's marginal at t = i/N.
    The literal i = t/N puts state i at t = i N, outside [0, T] for every
    i >= 1."""
    n = 64
    smld = ds.SMLD.from_sde(VE, n)
    idx = np.array([0, 8, 16, 32, 48, 64])
    np.testing.assert_array_equal(smld.t, np.arange(n + 1) / n)
    x0 = MU + np.sqrt(V0) * ds.standard_normal(N_PATHS, rng=11)
    tr = ds.forward(smld, x0, rng=12, save_at=idx)
    for i, xi in zip(idx, tr.xs):
        mean, var = data_marginal(VE, i / n)                # t = i / N
        assert_mean(xi, mean, np.sqrt(var))
        assert_variance(xi, var)
    with pytest.raises(ValueError, match="must lie in"):
        VE.marginal_coefficients(1 * n)                                  # i = t / N read literally: t = i N


def test_step1_4_taylor_step_of_the_sigma_increment():
    """Step 1.4: sigma(t + Dt)^2 - sigma(t)^2 ~ d(sigma^2)/dt Dt. The chain's
    increment sigma_i^2 - sigma_{i-1}^2 (from ``SMLD.from_sde``) against
    g(t_{i-1})^2 Dt (``VESDE.diffusion``): the largest relative error over the
    grid is O(Dt) -- fitted slope 1."""
    errors = []
    for n in LADDER:
        smld = ds.SMLD.from_sde(VE, int(n))
        increment = smld.step_coefficients()[1] ** 2
        g2_dt = VE.diffusion(smld.t[:-1]) ** 2 * (VE.T / n)
        errors.append(np.max(np.abs(increment / g2_dt - 1.0)))
    slope = fitted_slope(1.0 / LADDER, errors)              # measured 1.05
    assert abs(slope - 1.0) <= ORDER_TOL, (slope, errors)
    assert errors[-1] < errors[0]


def test_step1_7_smld_chain_and_ve_euler_maruyama_share_a_path_and_merge_at_first_order():
    """Steps 1.5-1.7: with z_t sqrt(Dt) = dB_t the chain is Euler-Maruyama of
    dx = sqrt(d sigma^2/dt) dB up to the step-1.4 Taylor error. Driven by the
    same draws (chain step i and EM step i-1 share noise interval i-1), the
    RMS of the final difference is O(1/N): fitted slope -1."""
    x0 = MU + np.sqrt(V0) * ds.standard_normal(20_000, rng=0)
    rms = []
    for n in LADDER:
        chain = ds.forward(ds.SMLD.from_sde(VE, int(n)), x0, rng=7).x
        em = ds.forward(VE, x0, steps=int(n), rng=7).x
        rms.append(np.sqrt(np.mean((chain - em) ** 2)))
    slope = fitted_slope(LADDER, rms)                       # measured -0.995
    assert abs(slope + 1.0) <= ORDER_TOL, (slope, rms)


# ---- step 2: the reverse SDE ------------------------------------------------------------


def test_step2_reverse_sde_with_g2_equal_dsigma2_dt_reaches_the_data_law():
    """Step 2.3: dx = -d(sigma^2)/dt grad log p_t dt + sqrt(d(sigma^2)/dt) dB,
    run from T to 0 (reverse Euler-Maruyama, method "em") with the exact
    score, returns the data law N(MU, V0) from the marginal at T: 10^5 paths
    within 5 standard errors, and the exact discretization bias of the
    variance vanishes at first order (fitted slope -1)."""
    x = ds.reverse(VE, SCORE, start_at_T(VE, N_PATHS, 1), 512, method="em", rng=2).x
    assert_mean(x, MU, np.sqrt(V0))
    assert_variance(x, V0)
    bias = [abs(exact_output_moments(VE_ORDER, "em", int(n))[1] - V0) for n in LADDER]
    slope = fitted_slope(LADDER, bias)                      # measured -1.06
    assert abs(slope + 1.0) <= ORDER_TOL, (slope, bias)


# ---- step 3: back to a discrete reverse chain ---------------------------------------------


def test_step3_4_discrete_reverse_step_is_the_seeds_update_and_reaches_the_data_law():
    """Step 3.4: x_{i-1} = x_i + (sigma_i^2 - sigma_{i-1}^2) grad log p_i(x)
    + sqrt(sigma_i^2 - sigma_{i-1}^2) z_i. The package's "reverse_diffusion"
    matches the moments of that update computed here from the schedule alone
    (5 standard errors, 10^5 paths, N = 64), and at N = 1024 it returns the
    data law."""
    mean, var = seed_step3_moments(VE, 64)
    x = ds.reverse(VE, SCORE, start_at_T(VE, N_PATHS, 3), 64, method="reverse_diffusion", rng=4).x
    assert_mean(x, mean, np.sqrt(var))
    assert_variance(x, var)
    assert abs(var - V0) > 5 * V0 * np.sqrt(2 / N_PATHS)   # N = 64 is visibly biased ...
    x = ds.reverse(VE, SCORE, start_at_T(VE, N_PATHS, 5), 1024, method="reverse_diffusion", rng=6).x
    assert_mean(x, MU, np.sqrt(V0))                          # ... N = 1024 is not
    assert_variance(x, V0)


def test_step3_discrete_reverse_step_and_reverse_sde_differ_at_first_order():
    """Step 3 replaces alpha(t) Dt by sigma_i^2 - sigma_{i-1}^2 in reverse
    Euler-Maruyama of the step-2 SDE. On the same draws the two samplers'
    paths differ by O(1/N) (RMS of the final difference, fitted slope -1), and
    so do their exact output variances (affine moment recursion; the means
    agree exactly since the score is centred at MU and VE has m = 1)."""
    x = start_at_T(VE, 20_000, 8)
    rms, var_gap = [], []
    for n in LADDER:
        rd = ds.reverse(VE, SCORE, x, int(n), method="reverse_diffusion", rng=9).x
        em = ds.reverse(VE, SCORE, x, int(n), method="em", rng=9).x
        rms.append(np.sqrt(np.mean((rd - em) ** 2)))
        var_gap.append(abs(exact_output_moments(VE, "reverse_diffusion", int(n))[1]
                           - exact_output_moments(VE, "em", int(n))[1]))
    path_slope = fitted_slope(LADDER, rms)                  # measured -1.02
    moment_slope = fitted_slope(LADDER, var_gap)            # measured -1.03
    assert abs(path_slope + 1.0) <= ORDER_TOL, (path_slope, rms)
    assert abs(moment_slope + 1.0) <= ORDER_TOL, (moment_slope, var_gap)


def test_step3_2_literal_signs_diverge_step3_3_corrected_signs_reach_the_data_law():
    """The seed's step 3.2 writes
    "x(t + Dt) - x(t) = -alpha(t) grad log p_t(x) Dt - sqrt(alpha(t) Dt) z(t)"
    and step 3.3 "rearranges" it to "+ alpha(t) grad log p_t(x) Dt
    + sqrt(alpha(t) Dt) z(t)": both signs flip, because time runs backwards
    (x(t + Dt) there is the state one step earlier). Used as the reverse step,
    3.2's drift sign pushes away from the data: the variance explodes (more
    than 10^3 times V0, 10^5 paths). The noise sign alone is immaterial (z
    and -z have one law): flipping only it still reaches the data law, as
    does step 3.3."""
    n = 1024
    table = reverse_table(VE, "reverse_diffusion", n)       # step 3.3 / 3.4
    x = start_at_T(VE, N_PATHS, 13)

    def run(b_sign, c_sign):
        coef = table.affine_coefficients()
        flipped = ds.StepTable.affine(**{**coef, "b": b_sign * coef["b"], "c": c_sign * coef["c"]})
        return ds.run_steps(x, flipped, score=SCORE, rng=14).x

    literal = run(-1.0, -1.0)
    lit_mean, lit_var = seed_step3_moments(VE, n, drift_sign=-1.0)
    assert_mean(literal, lit_mean, np.sqrt(lit_var))        # the samples follow the recursion ...
    assert_variance(literal, lit_var)
    five_se = 5 * V0 * np.sqrt(2 / N_PATHS)
    assert np.var(literal) - V0 > five_se                   # ... far from the data law
    assert lit_var > 1e3 * V0                               # (measured: ~1e11 V0)
    for b_sign, c_sign in ((1.0, 1.0), (1.0, -1.0)):        # step 3.3; 3.2 with only z flipped
        out = run(b_sign, c_sign)
        assert_mean(out, MU, np.sqrt(V0))
        assert_variance(out, V0)


def test_step3_1_seed_alpha_is_dsigma2_dt_not_the_api_alpha():
    """Step 3.1: "Let alpha(t) = d(sigma(t)^2)/dt. Then alpha(t) Dt =
    Delta(sigma(t)^2)". That alpha(t) is g(t)^2: reverse Euler-Maruyama with
    the API's default ``alpha=1`` has score coefficient b_k = g(t_k)^2 h, and
    it matches the chain increment sigma_k^2 - sigma_{k-1}^2 of
    "reverse_diffusion" to relative O(Dt) (fitted slope 1). The API's
    ``alpha`` is something else: the noise scale of the alpha-family (seed
    004), b_k = (1 + alpha^2)/2 g^2 h, c_k = alpha g sqrt(h); alpha = 0 (the
    probability-flow ODE) and alpha = 2 reach the same data law: 10^5 paths
    at N = 512 follow the exact moment recursion (5 standard errors) and its
    variance bias vanishes at first order (fitted slope -1 over N = 256 ..
    4096)."""
    errors = []
    for n in LADDER:
        em = reverse_table(VE, "em", int(n))
        rd = reverse_table(VE, "reverse_diffusion", int(n))
        errors.append(np.max(np.abs(em.affine_coefficients()["b"] / rd.affine_coefficients()["b"] - 1.0)))
    slope = fitted_slope(1.0 / LADDER, errors)              # measured 1.02
    assert abs(slope - 1.0) <= ORDER_TOL, (slope, errors)
    x = start_at_T(VE, N_PATHS, 15)
    for api_alpha in (0.0, 2.0):
        out = ds.reverse(VE, SCORE, x, 512, method="em", alpha=api_alpha, rng=16).x
        mean, var = exact_output_moments(VE, "em", 512, api_alpha)
        assert_mean(out, mean, np.sqrt(var))
        assert_variance(out, var)
        fine = 2 ** np.arange(8, 13)                        # N = 256 .. 4096: alpha = 0 is
        bias = [abs(exact_output_moments(VE, "em", int(n), api_alpha)[1] - V0) for n in fine]
        slope = fitted_slope(fine, bias)                    # pre-asymptotic below N ~ 256;
        # measured -0.98 (alpha 0), -1.01 (alpha 2)
        assert abs(slope + 1.0) <= ORDER_TOL, (api_alpha, slope, bias)
