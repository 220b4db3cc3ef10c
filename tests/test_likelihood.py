"""The probability-flow ODE log-likelihood against exact log densities."""
import numpy as np
import pytest

import diffsde as ds

from conftest import VP
from stats import fitted_slope


def test_exact_divergence_gives_logpdf_with_second_order_error():
    gm = ds.GaussianMixture([0.3, 0.7], [[0.0, 0.0], [3.0, 1.0]],
                            [[[1.0, 0.5], [0.5, 2.0]], [[0.5, 0.0], [0.0, 0.2]]])
    x = gm.sample(500, rng=1)
    prior = gm.marginal_law(VP, 1.0).logpdf  # the true p_T: no prior mismatch
    steps = np.array([25, 50, 100, 200])
    errors = [np.max(np.abs(ds.log_likelihood(VP, gm, x, int(n), prior=prior) - gm.logpdf(x))) for n in steps]
    assert errors[-1] < 1e-3
    assert fitted_slope(steps, errors) == pytest.approx(-2.0, abs=0.15)


def test_likelihood_at_an_intermediate_time_and_for_empirical_data():
    ve = ds.VESDE(0.05, 5.0)
    gm = ds.datasets.bimodal_1d()
    x = np.linspace(-4, 4, 9)
    t = 0.3
    got = ds.log_likelihood(ve, gm, x, 800, t_end=t, prior=gm.marginal_law(ve, 1.0).logpdf)
    np.testing.assert_allclose(got, gm.marginal_law(ve, t).logpdf(x), atol=1e-4)
    data = ds.EmpiricalData(ds.datasets.two_moons(50, rng=2))
    y = ds.datasets.two_moons(20, rng=3)
    t = 0.2
    m_T, s_T = VP.marginal_coefficients(1.0)
    exact_prior = lambda v: data.marginal_logpdf(v, m_T, s_T)  # noqa: E731
    got = ds.log_likelihood(VP, data, y, 400, t_end=t, prior=exact_prior)
    np.testing.assert_allclose(got, data.marginal_logpdf(y, *VP.marginal_coefficients(t)), atol=2e-3)


def test_hutchinson_estimate_is_unbiased():
    gm = ds.datasets.eight_gaussians(std=0.5)
    x = gm.sample(2000, rng=4)
    prior = gm.marginal_law(VP, 1.0).logpdf
    exact = ds.log_likelihood(VP, gm, x, 50, prior=prior)
    bound = gm.score(VP)
    estimate = ds.log_likelihood(VP, lambda v, t: bound(v, t), x, 50, prior=prior, n_probes=2, rng=5)
    diff = estimate - exact
    assert abs(diff.mean()) < 5 * diff.std() / np.sqrt(diff.size)
    assert diff.std() > 0  # it is an estimate
    more = ds.log_likelihood(VP, lambda v, t: bound(v, t), x, 50, prior=prior, n_probes=8, rng=5)
    assert (more - exact).std() < diff.std()


def test_bad_arguments():
    gm = ds.datasets.bimodal_1d()
    with pytest.raises(TypeError, match="needs an SDE"):
        ds.log_likelihood(ds.DDPM([0.1, 0.2]), gm, np.zeros(3))
    with pytest.raises(ValueError, match="steps"):
        ds.log_likelihood(VP, gm, np.zeros(3), 0)
    with pytest.raises(ValueError, match="t_end"):
        ds.log_likelihood(VP, gm, np.zeros(3), t_end=1.0)
    with pytest.raises(ValueError, match="n_probes applies to callable"):
        ds.log_likelihood(VP, gm, np.zeros(3), n_probes=3)
    with pytest.raises(ValueError, match="bound to"):
        ds.log_likelihood(VP, gm.score(ds.VESDE()), np.zeros(3))
