"""ds.forward: chains against their SDE limits path by path, grids, saving,
noise, errors."""
import numpy as np
import pytest

import diffsde as ds

from conftest import LADDER as NS, VE, VP
from stats import assert_mean, assert_variance, fitted_slope


@pytest.mark.parametrize("pair", ["ddpm-vp", "smld-ve"])
def test_chain_and_sde_em_share_draws_and_converge_path_by_path(pair):
    """Same rng: RMS over paths of the final difference shrinks like 1/N."""
    x0 = np.linspace(-2, 2, 2000)
    rms = []
    for n in NS:
        n = int(n)
        if pair == "ddpm-vp":
            chain, sde = ds.DDPM.from_sde(VP, n), VP
        else:
            chain, sde = ds.SMLD.from_sde(VE, n), VE
        diff = ds.forward(chain, x0, rng=7).x - ds.forward(sde, x0, steps=n, rng=7).x
        rms.append(np.sqrt(np.mean(diff**2)))
    assert fitted_slope(NS, rms) == pytest.approx(-1.0, abs=0.15)
    # different keys do not converge: the coupling is what makes this work
    other = ds.forward(sde, x0, steps=1024, rng=8).x - ds.forward(chain, x0, rng=7).x
    assert np.sqrt(np.mean(other**2)) > 100 * rms[-1]


def test_chain_em_runs_on_as_sde_and_exact_is_the_chain_itself():
    chain = ds.DDPM.from_sde(VP, 64)
    x0 = np.linspace(-1, 1, 300)
    np.testing.assert_array_equal(ds.forward(chain, x0, method="em", rng=1).x,
                                  ds.forward(chain.as_sde(), x0, steps=64, rng=1).x)
    np.testing.assert_allclose(ds.forward(chain, x0, method="exact", rng=1).x,
                               ds.forward(chain, x0, rng=1).x, rtol=1e-13, atol=1e-14)


def test_a_shared_brownian_path_gives_strong_order_one():
    """EM at 2^l steps on one path against EM at 2^12 steps on the same path."""
    n_paths = 2000
    x0 = np.linspace(-1, 1, n_paths)
    path = ds.BrownianPath((n_paths,), depth=12, rng=5)
    ref = ds.forward(VP, x0, steps=4096, noise=path).x
    steps = np.array([32, 64, 128, 256])
    err = [np.sqrt(np.mean((ds.forward(VP, x0, steps=int(n), noise=path).x - ref) ** 2)) for n in steps]
    assert fitted_slope(steps, err) == pytest.approx(-1.0, abs=0.15)
    # the chain and its SDE can ride the same path too
    chain = ds.DDPM.from_sde(VP, 256)
    d = ds.forward(chain, x0, noise=path).x - ref
    assert np.sqrt(np.mean(d**2)) < 3 * err[-1]


def test_time_span_and_user_grids():
    n = 100_000
    x0 = np.full(n, 1.0)
    tr = ds.forward(VP, x0, steps=5, method="exact", t0=0.3, t1=0.8, rng=2)
    m0, s0 = VP.marginal_coefficients(0.3)
    m1, s1 = VP.marginal_coefficients(0.8)
    a = m1 / m0
    assert_mean(tr.x, a, np.sqrt(s1**2 - a**2 * s0**2))
    assert_variance(tr.x, s1**2 - a**2 * s0**2)
    np.testing.assert_allclose(tr.ts, [0.3, 0.8])
    ts = np.array([0.0, 0.01, 0.1, 0.5, 1.0])
    tr = ds.forward(VE, x0, ts=ts, method="exact", rng=3, save_every=1)
    np.testing.assert_array_equal(tr.ts, ts)
    for k, t in enumerate(ts[1:], 1):
        assert_variance(tr.xs[k], VE.marginal_coefficients(t)[1] ** 2)


def test_save_every_and_save_at():
    x0 = np.zeros((50, 2))
    full = ds.forward(VP, x0, steps=10, rng=4, save_every=1)
    assert full.xs.shape == (11, 50, 2)
    np.testing.assert_allclose(full.ts, np.linspace(0, 1, 11))
    every = ds.forward(VP, x0, steps=10, rng=4, save_every=4)
    np.testing.assert_array_equal(every.xs, full.xs[[0, 4, 8, 10]])
    at_idx = ds.forward(VP, x0, steps=10, rng=4, save_at=[3, 7])
    np.testing.assert_array_equal(at_idx.xs, full.xs[[3, 7]])
    at_t = ds.forward(VP, x0, steps=10, rng=4, save_at=[0.3, 0.7])
    np.testing.assert_array_equal(at_t.xs, full.xs[[3, 7]])
    default = ds.forward(VP, x0, steps=10, rng=4)
    np.testing.assert_array_equal(default.xs, full.xs[[0, 10]])
    np.testing.assert_array_equal(default.x, full.x)
    with pytest.raises(ValueError, match="not on the run's grid"):
        ds.forward(VP, x0, steps=10, save_at=[0.35])


def test_dtype_out_progress_and_inputs():
    x0 = np.linspace(-1, 1, 64).astype(np.float32)
    tr = ds.forward(VP, x0, steps=20, rng=1)
    assert tr.x.dtype == np.float32 and tr.xs.dtype == np.float32
    out = np.empty(64, np.float32)
    same = ds.forward(VP, x0, steps=20, rng=1, out=out, progress=True)
    assert same.x is out
    np.testing.assert_array_equal(out, tr.x)
    np.testing.assert_array_equal(x0, np.linspace(-1, 1, 64).astype(np.float32))
    assert ds.forward(VP, np.arange(4), steps=2, rng=0).x.dtype == np.float64


def test_user_noise_drives_the_run():
    x0 = np.zeros((3, 2))
    z = np.random.default_rng(0).standard_normal((4, 3, 2))
    chain = ds.SMLD([0.5, 1.0, 2.0, 4.0])
    tr = ds.forward(chain, x0, noise=z)
    c = np.sqrt(np.diff(np.r_[0.0, 0.5, 1.0, 2.0, 4.0] ** 2))
    np.testing.assert_allclose(tr.x, np.tensordot(c, z, axes=1), rtol=1e-14)


def test_bad_input_gets_a_clear_error():
    x0 = np.zeros(4)
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        ds.forward(VP, x0, steps=0)
    with pytest.raises(ValueError, match="valid: em, exact"):
        ds.forward(VP, x0, method="ancestral")
    with pytest.raises(ValueError, match="valid: chain, exact, em"):
        ds.forward(ds.DDPM([0.1, 0.2]), x0, method="ode")
    with pytest.raises(ValueError, match="t1 <= T"):
        ds.forward(VP, x0, t1=1.5)
    with pytest.raises(ValueError, match="noise must have shape"):
        ds.forward(VP, x0, steps=3, noise=np.zeros((2, 4)))
    with pytest.raises(ValueError, match="respace"):
        ds.forward(ds.DDPM([0.1, 0.2]), x0, steps=1)
    with pytest.raises(ValueError, match="own grid"):
        ds.forward(ds.DDPM([0.1, 0.2]), x0, t1=0.5)
    with pytest.raises(ValueError, match="increase strictly"):
        ds.forward(VP, x0, ts=[0.0, 0.5, 0.4])
    with pytest.raises(ValueError, match="BrownianPath has shape"):
        ds.forward(VP, x0, steps=4, noise=ds.BrownianPath((5,), 3))
    with pytest.raises(ValueError, match="power-of-two"):
        ds.forward(VP, x0, steps=6, noise=ds.BrownianPath((4,), 3))
    with pytest.raises(TypeError, match="process must be"):
        ds.forward("vp", x0)
