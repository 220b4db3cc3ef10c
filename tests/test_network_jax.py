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


# -- states as JAX arrays: a JAX array in, a new JAX array out ----------------------
# Issue 19: the run is the NumPy run of the same values, bit for bit.

MIX = DATA.score(VP)


@pytest.mark.parametrize("method", ["em", "ddim", "rk45"])
def test_a_jax_state_comes_back_a_jax_array_with_the_numpy_runs_bits(method):
    assert not jax.config.jax_enable_x64  # 32-bit mode: float32 states and results
    x = jnp.asarray(X[:16], dtype=jnp.float32)
    before = np.array(x)
    save = {"save_at": [0.5, 0.1]} if method == "rk45" else {"save_every": 4}
    steps = None if method == "rk45" else 12
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = ds.reverse(VP, MIX, x, steps, method=method, rng=4, **save)
    want = ds.reverse(VP, MIX, X[:16].astype(np.float32), steps, method=method, rng=4, **save)
    for name in ("x", "xs"):
        a = getattr(got, name)
        assert isinstance(a, jax.Array) and a.dtype == jnp.float32, name
        np.testing.assert_array_equal(np.asarray(a), getattr(want, name))
    assert isinstance(got.ts, np.ndarray)
    np.testing.assert_array_equal(np.asarray(x), before)
    t = np.linspace(0.1, 0.9, 16, dtype=np.float32)
    pert = VP.perturb(x, jnp.asarray(t), rng=3)
    assert isinstance(pert, jax.Array) and pert.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(pert), VP.perturb(before, t, rng=3))
    fwd = ds.forward(VP, x, 6, rng=1)
    assert isinstance(fwd.x, jax.Array)
    np.testing.assert_array_equal(np.asarray(fwd.x), ds.forward(VP, before, 6, rng=1).x)


def test_float64_states_in_64_bit_mode(x64):
    x = jnp.asarray(X[:16])
    assert x.dtype == jnp.float64
    got = ds.reverse(VP, MIX, x, 10, rng=2, save_every=5)
    want = ds.reverse(VP, MIX, X[:16], 10, rng=2, save_every=5)
    assert got.x.dtype == jnp.float64 and isinstance(got.xs, jax.Array)
    np.testing.assert_array_equal(np.asarray(got.xs), want.xs)
    assert ds.log_likelihood(VP, DATA, x, steps=10).dtype == jnp.float64


def test_float64_runs_without_64_bit_mode_and_other_bad_arrays_raise_clearly():
    assert not jax.config.jax_enable_x64
    x = jnp.asarray(X[:4], dtype=jnp.float32)
    with pytest.raises(ValueError, match=r"computes in float64 \(dtype=float64\).*jax_enable_x64"):
        ds.forward(VP, x, 5, dtype="float64")
    with pytest.raises(ValueError, match=r"computes in float64 \(x of dtype int32\).*dtype='float32'"):
        ds.reverse(VP, MIX, jnp.arange(8).reshape(4, 2), 5)
    ints = ds.reverse(VP, MIX, jnp.arange(8).reshape(4, 2), 5, rng=0, dtype="float32")
    assert ints.x.dtype == jnp.float32
    with pytest.raises(TypeError, match="out cannot be a JAX array: JAX arrays are immutable"):
        ds.forward(VP, x, 5, out=jnp.zeros((4, 2)))
    for half in (jnp.float16, jnp.bfloat16):
        h = x.astype(half)
        with pytest.raises(TypeError, match=r"x0 is a JAX array of dtype \w*float16.*dtype='float32'"):
            ds.forward(VP, h, 5)
        got = ds.forward(VP, h, 5, rng=1, dtype="float32")
        want = ds.forward(VP, np.asarray(h.astype(jnp.float32)), 5, rng=1)
        np.testing.assert_array_equal(np.asarray(got.x), want.x)

    @jax.jit
    def inside(v):
        return ds.forward(VP, v, 5).x

    with pytest.raises(TypeError, match="x0 is a traced JAX value"):
        inside(x)


def test_callback_gets_jax_arrays_and_returns_the_new_state():
    # inpainting as in docs/methods.md, written functionally (JAX arrays are immutable)
    y = 0.4
    x32 = X[:32].astype(np.float32)

    states = []

    def numpy_hook(info):
        states.append(info["x"].copy())
        info["x"][:, 0] = y * (1 - info["t_next"])

    seen = []

    def jax_hook(info):
        assert isinstance(info["x"], jax.Array) and isinstance(info["denoised"], jax.Array)
        seen.append(info["x"])
        return info["x"].at[:, 0].set(y * (1 - info["t_next"]))

    want = ds.reverse(VP, MIX, x32, 10, rng=6, save_every=5, callback=numpy_hook)
    got = ds.reverse(VP, MIX, jnp.asarray(x32), 10, rng=6, save_every=5, callback=jax_hook)
    np.testing.assert_array_equal(np.asarray(got.x), want.x)
    np.testing.assert_array_equal(np.asarray(got.xs), want.xs)
    # each state the callback saw is its own array, still holding that step's state
    # (the run has changed its buffer since)
    assert len(seen) == len(states) == 10
    for mine, theirs in zip(seen, states):
        np.testing.assert_array_equal(np.asarray(mine), theirs)


def test_log_likelihood_of_a_jax_state_is_a_jax_array():
    x = DATA.sample(8, rng=4)
    want = ds.log_likelihood(VP, DATA, x.astype(np.float32), steps=20)
    got = ds.log_likelihood(VP, DATA, jnp.asarray(x, dtype=jnp.float32), steps=20)
    # computed in float64; JAX's 32-bit mode holds it as float32
    assert isinstance(got, jax.Array) and got.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(got), want.astype(np.float32))
