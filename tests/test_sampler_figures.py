"""Error against score evaluations (ds.analysis.error_vs_nfe and its plot)
and ds.plot.animate, drawn without a display."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import diffsde as ds  # noqa: E402
from conftest import VP  # noqa: E402

# the frame tests draw frames by hand and never render the player
pytestmark = pytest.mark.filterwarnings("ignore:Animation was deleted without rendering")

GAUSS = ds.GaussianMixture([1.0], [[1.0, -1.0]], [[0.25, 0.05]])
SAMPLERS = ["em", ("em", {"alpha": 0.0}), "ode_heun", "ddim", ("ddim", {"eta": 1.0})]


def test_exact_curves_are_the_exact_laws_at_the_budgets_steps():
    """N = the most steps whose table makes at most B evaluations (found
    here by counting up), on the logSNR grid; each error is
    exact_output_law's W2 (or KL) on that grid."""
    budgets = (4, 9, 16)
    res = ds.analysis.error_vs_nfe(VP, GAUSS, budgets, SAMPLERS)
    assert res.exact and res.metric == "W2" and res.budgets == budgets and res.floor is None
    for c in res.curves:
        assert c.steps.tolist() == sorted({_most_steps_within(c.method, b, c.options) for b in budgets})
        for n, nfe, err in zip(c.steps, c.nfe, c.error):
            law = ds.analysis.exact_output_law(VP, GAUSS, c.method, ts=ds.grids.logsnr(VP, int(n)), **c.options)
            assert err == law.w2 and nfe == law.nfe
    kinds = {c.label: c.deterministic for c in res.curves}
    assert kinds == {"em": False, "em, alpha=0.0": True, "ode_heun": True, "ddim": True, "ddim, eta=1.0": False}
    kl = ds.analysis.error_vs_nfe(VP, GAUSS, budgets, ["ode_heun"], metric="kl")
    law = ds.analysis.exact_output_law(VP, GAUSS, "ode_heun", ts=ds.grids.logsnr(VP, 8))
    assert kl.metric == "KL" and kl.curves[0].error[-1] == law.kl
    label, err = res.best(16)
    assert err == min(float(c.error[c.nfe <= 16].min()) for c in res.curves)
    assert res.best(16, deterministic=False)[0] in ("em", "ddim, eta=1.0")
    with pytest.raises(ValueError, match="no run"):
        res.best(2)


def _most_steps_within(name, budget, options):
    nfe = [ds.methods.table(VP, name, ds.grids.logsnr(VP, n), **options).nfe for n in range(1, budget + 2)]
    return max([n for n, k in enumerate(nfe, 1) if k <= budget], default=1)


def test_a_warm_up_is_paid_once_not_on_every_step():
    """plms evaluates 4 times in each of its 3 pseudo Runge-Kutta steps and
    once per step after: a budget of 40 gives 31 steps (31 + 9 = 40), not
    40 / 4 = 10; dpm_solver's 3 evaluations per step never exceed it."""
    res = ds.analysis.error_vs_nfe(VP, GAUSS, (8, 40), ["plms", "dpm_solver"])
    plms, dpm = res.curves
    assert plms.steps.tolist() == [_most_steps_within("plms", 8, {}), 31] and plms.nfe.tolist()[-1] == 40
    assert dpm.steps.tolist() == [2, 13] and dpm.nfe.tolist() == [6, 39]


def test_default_samplers_are_the_registry():
    res = ds.analysis.error_vs_nfe(VP, GAUSS, (8,))
    assert [c.label for c in res.curves] == [m for m in ds.methods.available(VP) if not ds.methods.get(m).adaptive]


def test_monte_carlo_curves_on_a_mixture():
    """Eight Gaussians: the mean of 3 runs' sliced W2 with its standard
    error, and the same-law floor inside its band."""
    res = ds.analysis.error_vs_nfe(VP, ds.datasets.eight_gaussians(), (4, 32), ["ode_heun", "ancestral"],
                                   paths=3000, repeats=3, rng=5)
    assert not res.exact and res.metric.startswith("sliced W2")
    assert res.floor_band[0] <= res.floor <= res.floor_band[1]
    for c in res.curves:
        assert c.stderr.shape == c.error.shape and np.all(c.stderr > 0)
    # 3 Heun evaluations (one Heun step and one Euler step) are far from the data; 31 reach the floor's band
    heun = res.curve("ode_heun")
    assert heun.error[0] > res.floor_band[1] + 5 * heun.stderr[0]
    assert heun.error[-1] < res.floor_band[1] + 3 * heun.stderr[-1]
    with pytest.raises(ValueError, match="no sampler"):
        res.curve("euler")


def test_error_vs_nfe_plot_groups_samplers():
    res = ds.analysis.error_vs_nfe(VP, GAUSS, (4, 8, 16), SAMPLERS)
    axes = ds.plot.error_vs_nfe(res)
    assert len(axes) == 2
    det = [line.get_label() for line in axes[0].get_lines() if not line.get_label().startswith("_")]
    sto = [line.get_label() for line in axes[1].get_lines() if not line.get_label().startswith("_")]
    assert det == ["em, alpha=0.0", "ode_heun", "ddim"] and sto == ["em", "ddim, eta=1.0"]
    assert axes[0].get_xscale() == "log" and "W2" in axes[0].get_ylabel()
    np.testing.assert_array_equal(axes[0].get_xticks(), [4, 8, 16])
    matplotlib.pyplot.close("all")


def _runs():
    gm = ds.datasets.eight_gaussians()
    long = ds.reverse(VP, gm, None, 16, shape=(300, 2), method="em", save_every=1, rng=1)
    short = ds.reverse(VP, gm, None, 8, shape=(300, 2), method="ode_heun", save_every=1, rng=1)
    return long, short


def test_animate_frames_and_limits():
    long, short = _runs()
    anim = ds.plot.animate({"em": long, "ode_heun": short}, n_points=200)
    assert anim.frames == 17 and long.xs.shape[0] == 17 and short.xs.shape[0] == 9
    # frame f shows the saved state nearest to the fraction f / 16 of each run
    np.testing.assert_array_equal(anim.index[0], np.arange(17))
    np.testing.assert_array_equal(anim.index[1], np.rint(np.arange(17) / 16 * 8).astype(int))
    pts = np.concatenate([long.xs[0, :200], long.xs[-1, :200], short.xs[0, :200], short.xs[-1, :200]])
    lo, hi = np.quantile(pts, [0.005, 0.995], axis=0)
    expect = [(lo[i] - 0.1 * (hi[i] - lo[i]), hi[i] + 0.1 * (hi[i] - lo[i])) for i in range(2)]
    np.testing.assert_allclose(anim.limits, expect)
    axes = anim.figure.axes
    assert len(axes) == 2
    for ax in axes:
        np.testing.assert_allclose(ax.get_xlim(), expect[0])
        np.testing.assert_allclose(ax.get_ylim(), expect[1])
    for f in (0, 7, 16):
        dots = anim.draw_frame(f)[:2]
        np.testing.assert_array_equal(dots[0].get_offsets(), long.xs[anim.index[0, f], :200])
        np.testing.assert_array_equal(dots[1].get_offsets(), short.xs[anim.index[1, f], :200])
    assert axes[1].get_title() == f"ode_heun\nt = {short.ts[anim.index[1, 16]]:.3g}"
    with pytest.raises(ValueError, match="f must be"):
        anim.draw_frame(17)
    matplotlib.pyplot.close("all")


def test_animate_html_and_gif(tmp_path):
    from PIL import Image

    long, _ = _runs()
    anim = ds.plot.animate(long, frames=5, limits=((-3, 3), (-3, 3)), n_points=100)
    assert anim.frames == 5 and anim.limits == ((-3, 3), (-3, 3))
    html = anim._repr_html_()
    assert "<script" in html and "frames" in html.lower()
    path = anim.save(str(tmp_path / "flow.gif"), fps=5)
    with Image.open(path) as im:
        assert im.n_frames == 5
    matplotlib.pyplot.close("all")


def test_animate_refuses_what_it_cannot_draw():
    tr = ds.reverse(VP, ds.LinearScore(0.0, 1.0), None, 4, shape=(10, 3), save_every=1, rng=0)
    with pytest.raises(ValueError, match="2-D states"):
        ds.plot.animate(tr)
    long, short = _runs()
    with pytest.raises(ValueError, match="labels has 1 entries for 2 runs"):
        ds.plot.animate([long, short], labels=["a"])
    with pytest.raises(ValueError, match="at least one run"):
        ds.plot.animate([])
