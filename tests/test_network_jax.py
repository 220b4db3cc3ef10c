"""JAX functions as scores: ds.reverse, ds.network_score and log_likelihood's
divergence by autograd, against the exact score and density of a known
Gaussian mixture (tests/networks.py writes it in JAX).
"""
import warnings

import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="JAX is not installed: pip install 'diffsde[jax]' runs these tests")

import jax.numpy as jnp  # noqa: E402

import diffsde as ds  # noqa: E402
import networks  # noqa: E402

VP = ds.VPSDE(0.1, 20.0)
EDM = ds.EDM()
DATA = networks.data()
X = np.random.default_rng(5).normal(size=(32, 2)) * 2.0


@pytest.fixture
def x64():
    """JAX's 64-bit mode for one test (JAX computes in float32 by default)."""
    before = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", before)


def jax_score(process, record=None):
    def score(x, t):
        if record is not None:
            record.append((x.dtype, t.dtype, t.shape))
        return networks.mixture(x, *networks.coefficients(process, float(t[0])), "jax")
    return score


def numpy_score(process):
    return lambda x, t: networks.mixture(x, *networks.coefficients(process, t))


def test_a_jax_function_runs_in_reverse(x64):
    record = []
    fn = jax_score(VP, record)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = ds.reverse(VP, ds.network_score(fn, VP, prediction="score", framework="jax"), X, steps=30, rng=2)
    want = ds.reverse(VP, numpy_score(VP), X, steps=30, rng=2)
    np.testing.assert_allclose(got.x, want.x, rtol=1e-12, atol=1e-12)
    assert set(record) == {(np.dtype(np.float64), np.dtype(np.float64), (32,))}


def test_a_jitted_function_is_recognised_and_float32_by_default():
    assert not jax.config.jax_enable_x64

    mu, v = 0.7, 0.4

    @jax.jit
    def denoiser(x, sigma):
        # Gaussian data N(mu, v) on EDM (m = 1, s = sigma): E[x0 | x] = mu + v (x - mu) / (v + sigma^2)
        return mu + v * (x - mu) / (v + sigma[:, None] ** 2)

    score = ds.network_score(denoiser, EDM, prediction="x0", time="sigma")
    assert score.framework == "jax"
    exact = ds.LinearScore(mu, v)
    for t in (0.5, 2.0, 20.0):
        out = score(X, t)
        assert out.dtype == np.float64
        want = exact.evaluate(X, 1.0, t)
        # float32 network: inputs and outputs rounded to float32, and (x0 - x)/s^2 cancels digits at small s
        np.testing.assert_allclose(out, want, rtol=0, atol=1e-6 * np.abs(X).max() / t**2)
    # passed directly (a jitted function is a JAX network: prediction "score", time "t")
    direct = jax.jit(lambda x, t: -x / (1.0 + t[:, None] ** 2))
    tr = ds.reverse(EDM, direct, X, steps=10, rng=0)
    ref = ds.reverse(EDM, lambda x, t: -x / (1.0 + t**2), X, steps=10, rng=0)
    np.testing.assert_allclose(tr.x, ref.x, rtol=1e-5, atol=1e-5)


def test_float64_without_x64_mode_raises_clearly():
    assert not jax.config.jax_enable_x64
    with pytest.raises(ValueError, match="jax_enable_x64"):
        ds.network_score(jax.jit(lambda x, t: x), VP, framework="jax", dtype="float64")


def test_autograd_divergence_matches_the_exact_trace(x64):
    x = DATA.sample(12, rng=4)
    exact = ds.log_likelihood(VP, DATA, x, steps=30)
    score = ds.network_score(jax_score(VP), VP, prediction="score", framework="jax")
    got = ds.log_likelihood(VP, score, x, steps=30, divergence="autograd")
    np.testing.assert_allclose(got, exact, rtol=0, atol=1e-9)
    hutch = ds.log_likelihood(VP, score, x, steps=30, divergence="hutchinson", n_probes=2, rng=3)
    fd = ds.log_likelihood(VP, numpy_score(VP), x, steps=30, n_probes=2, rng=3)
    np.testing.assert_allclose(hutch, fd, rtol=0, atol=1e-6)
