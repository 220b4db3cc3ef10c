"""DDPM and SMLD chains and their SDE limits."""
import numpy as np
import pytest

import diffsde as ds

from conftest import LADDER as NS, VE, VP
from stats import assert_mean, assert_variance, fitted_slope


def test_ddpm_riemann_marginal_converges_at_first_order():
    m_T, s_T = VP.marginal_coefficients(VP.T)
    errors = [abs(ds.DDPM.from_sde(VP, int(n)).marginal_coefficients(int(n))[1] ** 2 - s_T**2) +
              abs(ds.DDPM.from_sde(VP, int(n)).marginal_coefficients(int(n))[0] - m_T) for n in NS]
    assert fitted_slope(NS, errors) == pytest.approx(-1.0, abs=0.15)


def test_ddpm_exact_rule_has_the_vp_marginals_on_the_grid():
    for n in (16, 100, 1000):
        chain = ds.DDPM.from_sde(VP, n, rule="exact")
        m, s = chain.marginal_coefficients(np.arange(n + 1))
        m_sde, s_sde = VP.marginal_coefficients(chain.t)
        np.testing.assert_allclose(m, m_sde, rtol=1e-13)
        np.testing.assert_allclose(s, s_sde, rtol=1e-13, atol=1e-300)


def test_smld_from_sde_agrees_with_ve_on_the_grid():
    for n in (10, 1000):
        chain = ds.SMLD.from_sde(VE, n)
        assert chain.sigma0 == pytest.approx(VE.sigma(0.0), rel=1e-15)
        np.testing.assert_allclose(chain.marginal_coefficients(np.arange(n + 1))[1], VE.marginal_coefficients(chain.t)[1], rtol=1e-12)


def test_taylor_step_of_the_seeds_is_second_order_in_beta():
    """sqrt(1 - beta) = 1 - beta/2 + O(beta^2): the DDPM step vs the EM step."""
    betas = 2.0 ** -np.arange(4, 14)
    errors = np.abs(np.sqrt(1 - betas) - (1 - betas / 2))
    assert fitted_slope(betas, errors) == pytest.approx(2.0, abs=0.05)
    # the same difference between a DDPM chain and EM on its own SDE
    chain = ds.DDPM(np.full(8, 1e-3))
    em = ds.methods.table(chain, "em", direction="forward")
    np.testing.assert_allclose(np.sqrt(1 - chain.betas) - em.affine_coefficients()["a"], -(1e-3) ** 2 / 8, rtol=1e-3)


def test_as_sde_round_trips_on_the_grid():
    chain = ds.DDPM(np.linspace(1e-4, 0.02, 50), T=2.0)
    back = ds.DDPM.from_sde(chain.as_sde(), 50)
    np.testing.assert_allclose(back.betas, chain.betas, rtol=1e-13)
    smld = ds.SMLD(np.geomspace(0.1, 10, 20), sigma0=0.05)
    back = ds.SMLD.from_sde(smld.as_sde(), 20)
    np.testing.assert_allclose(back.sigmas, smld.sigmas, rtol=1e-13)
    assert back.sigma0 == pytest.approx(0.05, rel=1e-13)
    np.testing.assert_allclose(smld.as_sde().marginal_coefficients(smld.t)[1], smld.marginal_coefficients(np.arange(21))[1], rtol=1e-13)


@pytest.mark.parametrize("chain", [ds.DDPM.from_sde(VP, 1000), ds.SMLD.from_sde(VE, 1000)])
def test_respace_keeps_the_marginals_at_the_kept_indices(chain):
    short = chain.respace(10)
    assert short.N == 10
    idx = np.arange(0, 1001, 100)
    for got, want in zip(short.marginal_coefficients(np.arange(11)), chain.marginal_coefficients(idx)):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    with pytest.raises(ValueError, match=r"M must be an int in \[1, N\]"):
        chain.respace(2000)


@pytest.mark.parametrize("name", ["ddpm", "smld"])
def test_chain_paths_have_the_chain_marginals(name):
    chain = ds.DDPM.from_sde(VP, 50) if name == "ddpm" else ds.SMLD(np.geomspace(0.1, 5, 50), 0.02)
    n = 100_000
    x0 = np.full(n, 2.0)
    tr = ds.forward(chain, x0, rng=6, save_at=[0, 10, 50])
    m, s = chain.marginal_coefficients(np.array([0, 10, 50]))
    for k in range(3):
        assert_mean(tr.xs[k], m[k] * 2.0, max(s[k], 1e-300))
        if k:
            assert_variance(tr.xs[k], s[k] ** 2)
    np.testing.assert_array_equal(tr.ts, chain.t[[0, 10, 50]])


def test_chain_t_and_marginal_shapes():
    chain = ds.DDPM(np.full(4, 0.1), T=2.0)
    np.testing.assert_allclose(chain.t, [0, 0.5, 1.0, 1.5, 2.0])
    m, s = chain.marginal_coefficients(np.array([0, 4]))
    np.testing.assert_allclose(m, [1.0, 0.9**2])
    np.testing.assert_allclose(s, [0.0, np.sqrt(1 - 0.9**4)])
    m, s = chain.marginal_coefficients(2)
    assert m == pytest.approx(0.9) and s == pytest.approx(np.sqrt(0.19))
    with pytest.raises(ValueError, match=r"\[0, N\]"):
        chain.marginal_coefficients(5)
    with pytest.raises(TypeError, match="integer"):
        chain.marginal_coefficients(1.5)


def test_bad_chains_raise_with_the_value_named():
    with pytest.raises(ValueError, match=r"betas must lie in \(0, 1\); betas\[1\] = 1.0"):
        ds.DDPM([0.1, 1.0])
    with pytest.raises(ValueError, match=r"betas must lie in \(0, 1\)"):
        ds.DDPM([0.0, 0.5])
    with pytest.raises(ValueError, match="pass sigmas\\[::-1\\]"):
        ds.SMLD([5.0, 1.0, 0.1])
    with pytest.raises(ValueError, match="increase strictly from sigma0"):
        ds.SMLD([0.1, 0.2], sigma0=0.3)
    with pytest.raises(ValueError, match=r"beta_\d+ = .* >= 1 with N = 10 steps"):
        ds.DDPM.from_sde(VP, 10)
    with pytest.raises(TypeError, match="needs a VPSDE"):
        ds.DDPM.from_sde(VE, 10)
    with pytest.raises(TypeError, match="needs a VESDE"):
        ds.SMLD.from_sde(VP, 10)
    with pytest.raises(ValueError, match="rule"):
        ds.DDPM.from_sde(VP, 100, rule="midpoint")
