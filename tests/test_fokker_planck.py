"""The Fokker-Planck solver against exact mixture marginals."""
import numpy as np
import pytest

import diffsde as ds
from diffsde import fokker_planck as fp

from conftest import BIMODAL as DATA, VE_FP as VE, VP
from stats import fitted_slope


def l1(p, q, dx):
    return np.sum(np.abs(p - q)) * dx


@pytest.mark.parametrize("sde, half_width", [(VP, 6.0), (VE, 20.0)], ids=["vp", "ve"])
def test_forward_density_matches_the_exact_marginal_at_first_order_in_time(sde, half_width):
    x = np.linspace(-half_width, half_width, 2001)
    p0 = np.exp(DATA.logpdf(x))
    steps = np.array([100, 200, 400])
    errors = []
    for n in steps:
        sol = fp.solve_forward(sde, p0, x, steps=int(n), save_every=int(n) // 4)
        assert np.max(np.abs(sol.mass() - sol.mass()[0])) < 1e-10
        assert sol.p.min() >= 0
        for t, p in zip(sol.ts, sol.p):
            assert l1(p, np.exp(DATA.marginal_law(sde, t).logpdf(x)), sol.dx) < 0.02
        errors.append(l1(sol.p[-1], np.exp(DATA.marginal_law(sde, sde.T).logpdf(x)), sol.dx))
    assert fitted_slope(steps, errors) == pytest.approx(-1.0, abs=0.2)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0, 2.0])
def test_every_alpha_carries_p_T_back_to_the_data(alpha):
    x = np.linspace(-6, 6, 1201)
    p_T = np.exp(DATA.marginal_law(VP, 1.0).logpdf(x))
    sol = fp.solve_reverse(VP, DATA.score(VP), p_T, x, alpha=alpha, steps=1000, save_every=250)
    assert np.max(np.abs(sol.mass() - sol.mass()[0])) < 1e-10 and sol.p.min() >= 0
    np.testing.assert_allclose(sol.ts, [1.0, 0.75, 0.5, 0.25, 0.0])
    for t, p in zip(sol.ts, sol.p):
        assert l1(p, np.exp(DATA.marginal_law(VP, t).logpdf(x)), sol.dx) < 0.03


def test_bad_input():
    x = np.linspace(-1, 1, 11)
    with pytest.raises(ValueError, match="uniformly spaced"):
        fp.solve_forward(VP, np.ones(3), np.array([0.0, 1.0, 3.0]))
    with pytest.raises(ValueError, match="non-negative"):
        fp.solve_forward(VP, -np.ones(11), x)
    with pytest.raises(ValueError, match="one density value per cell"):
        fp.solve_forward(VP, np.ones(5), x)
    with pytest.raises(ValueError, match="alpha"):
        fp.solve_reverse(VP, DATA.score(VP), np.ones(11), x, alpha=-1)
    with pytest.raises(TypeError, match="sde must be"):
        fp.solve_forward(ds.DDPM([0.1]), np.ones(11), x)
