"""The helpers the peer comparisons rest on (tools/compare_samplers.py,
benchmarks/samplers.py), checked without the peer libraries: the normals fed
to k-diffusion and diffusers are diffsde's own draws, the process standing
for diffusers' training chain has its marginals, and the torch denoiser of
the speed benchmark is diffsde's exact mixture denoiser."""
import math
import sys
from pathlib import Path

import numpy as np
import pytest

import diffsde as ds
import reference_samplers as rs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import compare_samplers as cs  # noqa: E402


@pytest.mark.parametrize("name, opts", [("euler_ancestral", {}), ("heun", {"s_churn": 2.0}),
                                        ("dpm_2_ancestral", {"eta": 0.8}), ("dpmpp_sde", {}),
                                        ("dpmpp_3m_sde", {})])
def test_engine_normals_are_the_normals_of_a_diffsde_run(name, opts):
    """The twin fed EngineNormals(shape, SEED, n) equals ds.reverse(rng=SEED):
    every step, churn and bridge normal is the one diffsde drew (a wrong
    stream or interval gives O(1) differences). 1e-12 relative: the same
    arithmetic in another order, ~10 ulps per step over 12 steps."""
    n = 12
    ts = ds.grids.karras(ds.EDM(), n, sigma_max=20.0)
    ts[-1] = 0.0
    x0 = np.linspace(-30, 30, 14).reshape(7, 2)
    got = cs.run_diffsde(cs.wide_edm(), x0, ts, name, **opts)
    twin = rs.SAMPLERS[name][0](cs.D_NP, x0, ts, cs.EngineNormals(x0.shape, cs.SEED, n), **opts)
    np.testing.assert_allclose(got, twin, rtol=1e-12, atol=1e-12 * np.abs(twin).max())
    with pytest.raises(ValueError, match="step 12 outside the 12 steps"):
        cs.EngineNormals(x0.shape, cs.SEED, n)(n, rs.STEP)


def test_diffusers_chain_has_the_chain_marginals_at_every_index():
    """m = sqrt(abar_i), s = sqrt(1 - abar_i) at t = i (abar_0 = 1), and log
    abar halfway between two indices at a half-integer t."""
    betas = np.linspace(1e-4, 0.02, 1000)
    ab = np.cumprod(1 - betas)
    chain = cs.diffusers_chain(ab)
    i = np.array([0, 1, 2, 500, 999, 1000])
    m, s = chain.marginal_coefficients(i.astype(float))
    full = np.r_[1.0, ab]
    np.testing.assert_allclose(m, np.sqrt(full[i]), rtol=1e-15)
    np.testing.assert_allclose(s[1:], np.sqrt(1 - full[i[1:]]), rtol=1e-12)
    assert s[0] == 0.0
    m_half = float(chain.marginal_coefficients(np.array([971.5]))[0][0])
    assert m_half == pytest.approx(math.exp(0.25 * (math.log(full[971]) + math.log(full[972]))), rel=1e-15)


#: Unequal weights and variances: every term of the responsibilities matters.
UNEQUAL = ds.GaussianMixture([0.5, 0.3, 0.2], [[-1.0, 0.5], [2.0, 0.0], [0.0, -1.5]], [0.05, 0.3, 1.2])


@pytest.mark.parametrize("mixture", [ds.datasets.eight_gaussians(), UNEQUAL], ids=["eight_gaussians", "unequal"])
def test_torch_mixture_denoiser_is_the_exact_denoiser(mixture):
    """The benchmark's torch denoiser against diffsde's x + sigma^2 score,
    with one sigma per row (as k-diffusion calls it): rounding relative to
    |x| (at large sigma D is a small difference of two terms of size |x|)."""
    torch = pytest.importorskip("torch")
    import samplers
    denoise = samplers.torch_mixture_denoiser(torch, mixture)
    score = mixture.score(ds.EDM())
    assert samplers.check_denoiser(torch, denoise, score, np.random.default_rng(0)) < 1e-13
    rng = np.random.default_rng(1)
    sig = np.exp(rng.uniform(math.log(0.002), math.log(80.0), 64))
    x = rng.standard_normal((64, 2)) * np.hypot(2.0, sig)[:, None]
    got = denoise(torch.from_numpy(x), torch.from_numpy(sig)).numpy()
    want = np.stack([x[k] + sig[k] ** 2 * score(x[k:k + 1], float(sig[k]))[0] for k in range(64)])
    assert np.abs(got - want).max() < 1e-13 * np.abs(x).max()
    with pytest.raises(ValueError, match="isotropic"):
        samplers.torch_mixture_denoiser(torch, ds.GaussianMixture([1.0], [[0.0, 0.0]], [[1.0, 2.0]]))
