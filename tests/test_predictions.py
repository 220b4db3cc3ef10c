"""Prediction types -> scores (diffsde.predictions), checked against the exact
score of known data on every kind of process.

The "networks" are exact: the posterior mean E[x_0 | x_t = x] of a Gaussian
mixture computed component by component (tests/networks.py, no Tweedie), and
from it E[eps | x] = (x - m E[x_0|x]) / s, v = m eps - s x0 and the velocity
u = m' x0 + s' eps with m', s' from central differences of (m, s) (not the
process's dmean/dvar). Each adapter must then return the mixture's exact
score, which ds.GaussianMixture computes on its own.
"""
import numpy as np
import pytest

import diffsde as ds
import networks

COSINE = ds.AffineSDE(mean=lambda t: np.cos(0.5 * np.pi * t), std=lambda t: np.sin(0.5 * np.pi * t),
                      name="cosine path")
# a user path that is neither variance-preserving nor exploding
RATIONAL = ds.AffineSDE(mean=lambda t: 1 / (1 + t), std=lambda t: t * (1 + 0.5 * t), T=2.0, name="rational path")
PROCESSES = {
    "vp": ds.VPSDE(0.1, 20.0),
    "subvp": ds.SubVPSDE(0.1, 20.0),
    "ve": ds.VESDE(0.01, 50.0),
    "edm": ds.EDM(),
    "rf": ds.RectifiedFlow(),
    "cosine": COSINE,
    "rational": RATIONAL,
}
FRACTIONS = (0.05, 0.4, 0.9)
X = np.random.default_rng(3).normal(size=(7, 2)) * 2.0
DATA = networks.data()


def _times(process):
    return [f * process.T for f in FRACTIONS]


def _derivatives(process, t, h=1e-6):
    """(m', s') by central differences of the marginal coefficients."""
    h = h * process.T
    m1, s1 = networks.coefficients(process, t + h)
    m0, s0 = networks.coefficients(process, t - h)
    return (m1 - m0) / (2 * h), (s1 - s0) / (2 * h)


def _predictions(process, x, t):
    m, s = networks.coefficients(process, t)
    x0 = networks.mixture(x, m, s, what="x0")
    eps = (x - m * x0) / s
    return m, s, x0, eps


def _x0(process):
    return lambda x, t: _predictions(process, x, t)[2]


def _eps(process):
    return lambda x, t: _predictions(process, x, t)[3]


def _v(process):
    def v(x, t):
        m, s, x0, eps = _predictions(process, x, t)
        return m * eps - s * x0
    return v


def _u(process):
    def u(x, t):
        m, s, x0, eps = _predictions(process, x, t)
        dm, ds_ = _derivatives(process, t)
        return dm * x0 + ds_ * eps
    return u


def _assert_exact(score, process, rtol):
    exact = DATA.score(process)
    for t in _times(process):
        want = exact(X, t)
        got = score(X, t)
        np.testing.assert_allclose(got, want, rtol=0, atol=rtol * np.max(np.abs(want)), err_msg=f"t = {t}")


@pytest.mark.parametrize("name", PROCESSES)
def test_score_from_x0_is_tweedie_on_every_process(name):
    process = PROCESSES[name]
    _assert_exact(ds.score_from_x0(_x0(process), process), process, 1e-10)


@pytest.mark.parametrize("name", PROCESSES)
def test_score_from_eps_on_every_process(name):
    process = PROCESSES[name]
    _assert_exact(ds.score_from_eps(_eps(process), process), process, 1e-10)


@pytest.mark.parametrize("name", PROCESSES)
def test_score_from_velocity_on_every_process(name):
    # the central differences of (m, s) carry ~1e-9 relative error
    process = PROCESSES[name]
    _assert_exact(ds.score_from_velocity(_u(process), process), process, 1e-6)


def test_score_from_velocity_on_rectified_flow_is_the_closed_form():
    rf = PROCESSES["rf"]
    u = _u(rf)
    score = ds.score_from_velocity(u, rf)
    for t in _times(rf):
        np.testing.assert_allclose(score(X, t), -(X + (1 - t) * u(X, t)) / t, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["vp", "cosine"])
def test_score_from_v_on_variance_preserving_paths(name):
    process = PROCESSES[name]
    _assert_exact(ds.score_from_v(_v(process), process), process, 1e-10)


@pytest.mark.parametrize("name", ["subvp", "ve", "edm", "rf", "rational"])
def test_score_from_v_raises_naming_the_process_off_unit_paths(name):
    process = PROCESSES[name]
    with pytest.raises(ValueError, match="m\\^2 \\+ s\\^2 = 1") as info:
        ds.score_from_v(lambda x, t: x, process)
    assert repr(process) in str(info.value)
    assert "np.float64" not in str(info.value)


def test_chain_predictions_use_the_chain_coefficients():
    chain = ds.DDPM.linear(50)
    m, s = (float(c) for c in chain.marginal_coefficients(20))
    t = 20 * chain.T / chain.N
    x0 = networks.mixture(X, m, s, what="x0")
    want = networks.mixture(X, m, s)
    for score in (ds.score_from_x0(lambda x, tt: x0, chain),
                  ds.score_from_eps(lambda x, tt: (x - m * x0) / s, chain),
                  ds.score_from_v(lambda x, tt: m * (x - m * x0) / s - s * x0, chain)):
        np.testing.assert_allclose(score(X, t), want, rtol=1e-10, atol=1e-12)


def test_velocity_on_a_chain_raises_naming_it():
    chain = ds.DDPM.linear(50)
    with pytest.raises(ValueError, match="chain.as_sde"):
        ds.score_from_velocity(lambda x, t: x, chain)


def test_score_from_eps_stays_importable_from_scores():
    assert ds.scores.score_from_eps is ds.predictions.score_from_eps is ds.score_from_eps


@pytest.mark.parametrize("maker", [ds.score_from_x0, ds.score_from_v, ds.score_from_velocity])
def test_bad_arguments(maker):
    with pytest.raises(TypeError, match="must be callable"):
        maker(3, PROCESSES["vp"])
    with pytest.raises(TypeError, match="process must be an SDE or a chain"):
        maker(lambda x, t: x, "vp")


def test_undefined_where_s_vanishes():
    vp = PROCESSES["vp"]
    with pytest.raises(ValueError, match="s\\(t\\) = 0"):
        ds.score_from_x0(lambda x, t: x, vp)(X, 0.0)
