"""Plot helpers: each draws, labels its axes and returns them."""
import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib", reason="plots need the optional matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import diffsde as ds  # noqa: E402
from diffsde import analysis, fokker_planck, plot  # noqa: E402

VP = ds.VPSDE()


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_trajectories_draws_paths_and_a_quantile_fan():
    tr = ds.forward(VP, np.linspace(-1, 1, 500), steps=50, rng=0, save_every=5)
    ax = plot.trajectories(tr, n_paths=20)
    assert len(ax.lines) == 20 + 1  # the paths and the median
    assert ax.get_xlabel() == "t" and len(ax.collections) == 1
    rev = ds.reverse(VP, ds.LinearScore(0.0, 1.0), shape=(200,), steps=20, rng=1, save_every=2)
    ax = plot.trajectories(rev)
    assert ax.get_xlim()[0] > ax.get_xlim()[1]  # reverse time reads right to left


def test_marginals_in_one_and_two_dimensions_against_the_exact_law():
    data = ds.datasets.bimodal_1d()
    x0 = data.sample(5000, rng=2)
    tr = ds.forward(VP, x0, steps=20, rng=3, save_every=10)
    ax = plot.marginals(tr, [0.0, 0.5, 1.0], exact=data, process=VP)
    assert len(ax.patches) == 3 and len(ax.lines) == 3
    gm = ds.datasets.eight_gaussians()
    tr2 = ds.forward(VP, gm.sample(2000, rng=4), steps=10, rng=5, save_every=5)
    axes = plot.marginals(tr2, [0.0, 1.0], exact=gm, process=VP)
    assert len(axes) == 2 and axes[1].get_title() == "t = 1"
    with pytest.raises(ValueError, match="not a saved time"):
        plot.marginals(tr, [0.33])


def test_convergence_density_evolution_and_chain_comparison():
    study = analysis.strong_error(VP, np.linspace(-1, 1, 500), [16, 32, 64], rng=6)
    ax = plot.convergence(study)
    assert ax.get_xscale() == "log" and "order" in ax.get_legend().get_texts()[0].get_text()
    x = np.linspace(-5, 5, 201)
    data = ds.datasets.bimodal_1d()
    sol = fokker_planck.solve_forward(VP, np.exp(data.logpdf(x)), x, steps=40, save_every=4)
    particles = ds.forward(VP, data.sample(3000, rng=7), steps=40, rng=8, save_every=4)
    ax = plot.density_evolution(sol, particles)
    assert ax.get_xlabel() == "t" and len(ax.lines) >= 3
    ax = plot.compare_chain_sde(ds.DDPM.from_sde(VP, 50), np.linspace(-1, 1, 10), n_paths=3)
    assert len(ax.lines) == 6 and "same draws" in ax.get_title()
