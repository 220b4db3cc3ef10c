"""Convergence studies, order fits and distances with their noise floors."""
import numpy as np
import pytest
from scipy import stats as sps

import diffsde as ds
from diffsde import analysis

from conftest import VP


def test_fit_order_recovers_a_power_law_and_its_uncertainty():
    n = np.array([16, 32, 64, 128, 256])
    exact = analysis.fit_order(n, 3.0 * n**-1.5)
    assert exact.order == pytest.approx(1.5, abs=1e-12) and exact.constant == pytest.approx(3.0)
    assert exact.ci[1] - exact.ci[0] < 1e-9
    noisy = analysis.fit_order(n, 3.0 * n**-1.5 * np.exp(np.random.default_rng(0).normal(0, 0.05, n.size)))
    assert noisy.ci[0] < 1.5 < noisy.ci[1] and noisy.ci[1] - noisy.ci[0] < 0.3
    with pytest.raises(ValueError, match="positive"):
        analysis.fit_order([1, 2], [1.0, 0.0])


def test_strong_and_weak_error_of_forward_em_are_first_order():
    x0 = np.linspace(-2, 2, 4000)
    strong = analysis.strong_error(VP, x0, [32, 64, 128, 256], rng=1)
    assert strong.reference_steps == 4096
    assert strong.fit.order == pytest.approx(1.0, abs=0.15)
    assert np.all(strong.stderr > 0) and np.all(strong.stderr < 0.1 * strong.errors)
    weak = analysis.weak_error(VP, x0, [32, 64, 128, 256], rng=1)
    assert weak.fit.order == pytest.approx(1.0, abs=0.15)
    assert np.all(weak.errors > 5 * weak.stderr)  # coupling resolves every level
    assert "fitted order" in strong.table()


def test_strong_error_of_the_reverse_sde():
    score = ds.LinearScore(1.0, 0.5)
    m, s = VP.marginal(1.0)
    x_T = m + np.sqrt(m * m * 0.5 + s * s) * ds.standard_normal(4000, rng=2)
    study = analysis.strong_error(VP, x_T, [32, 64, 128, 256], score=score, direction="reverse",
                                  t_end=0.01, rng=3)
    assert study.fit.order == pytest.approx(1.0, abs=0.15)
    with pytest.raises(ValueError, match="needs a score"):
        analysis.strong_error(VP, x_T, [32, 64], direction="reverse")
    with pytest.raises(ValueError, match="powers of two"):
        analysis.strong_error(VP, x_T, [30, 60])


def test_one_dimensional_distances_and_their_floors():
    rng = np.random.default_rng(4)
    x, y, z = rng.standard_normal(20_000), rng.standard_normal(20_000), rng.standard_normal(20_000) + 0.3
    same, shifted = analysis.wasserstein_1d(x, y), analysis.wasserstein_1d(x, z)
    assert same.value < 4 * same.floor
    assert shifted.value == pytest.approx(0.3, abs=3 * shifted.floor)
    assert analysis.wasserstein_1d(x, z, p=2).value == pytest.approx(0.3, abs=0.03)
    ks = analysis.ks_statistic(x, z)
    assert ks.value == pytest.approx(sps.ks_2samp(x, z).statistic, abs=1e-12)
    assert ks.value > 10 * ks.floor
    uneven = analysis.wasserstein_1d(x[:5000], z)
    assert uneven.value == pytest.approx(0.3, abs=4 * uneven.floor)


def test_sliced_wasserstein_of_shifted_gaussians():
    rng = np.random.default_rng(5)
    d, shift = 4, np.array([0.4, 0.0, 0.0, 0.0])
    x = rng.standard_normal((20_000, d))
    y = rng.standard_normal((20_000, d)) + shift
    dist = analysis.sliced_wasserstein(x, y, n_projections=256)
    assert dist.value == pytest.approx(np.linalg.norm(shift) / np.sqrt(d), abs=3 * dist.floor + 0.02)
    same = analysis.sliced_wasserstein(x, rng.standard_normal((20_000, d)), n_projections=256)
    assert same.value < 4 * same.floor


def test_moment_errors_have_honest_standard_errors():
    x = np.random.default_rng(6).exponential(2.0, size=(100_000, 2))
    out = analysis.moment_errors(x, [2.0, 2.0], [4.0, 4.0])
    assert np.all(np.abs(out["mean_error"]) < 5 * out["mean_stderr"])
    assert np.all(np.abs(out["var_error"]) < 5 * out["var_stderr"])
    # exponential: var of the sample variance is (mu4 - sigma^4)/n = 8 sigma^4 / n
    np.testing.assert_allclose(out["var_stderr"], np.sqrt(8 * 16 / 100_000), rtol=0.2)
