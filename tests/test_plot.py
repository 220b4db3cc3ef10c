"""Plot helpers: each draws, labels its axes and returns them."""
import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib", reason="plots need the optional matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import diffsde as ds  # noqa: E402
from diffsde import analysis, fokker_planck, plot  # noqa: E402
from conftest import TOUR_STEPS  # noqa: E402

VP = ds.VPSDE()


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_trajectories_draws_paths_and_a_quantile_fan():
    tr = ds.forward(VP, np.linspace(-1, 1, 500), steps=50, rng=0, save_every=5)
    ax = plot.trajectories(tr, n_paths=20)
    assert len(ax.lines) == 20 + 1  # the paths and the median
    starts = sorted(line.get_ydata()[0] for line in ax.lines[1:])
    assert starts[0] == -1.0 and starts[-1] == 1.0  # spread over the batch, not its first 20 rows
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


@pytest.mark.filterwarnings("ignore::diffsde.analysis.OrderFitWarning")  # a cheap study: its CI is wide
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


def _studies():
    x0 = np.linspace(-1, 1, 400)
    return (analysis.strong_error(VP, x0, [16, 32, 64, 128], rng=6),
            analysis.weak_error(VP, x0, [16, 32, 64, 128], rng=6))


def test_convergence_takes_one_label_per_study_and_rejects_a_wrong_count():
    strong, weak = _studies()
    ax = plot.convergence([strong, weak], labels=["strong, VP", "weak, VP"])
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == [f"strong, VP: order {strong.fit.order:.2f}", f"weak, VP: order {weak.fit.order:.2f}"]
    with pytest.raises(ValueError, match="labels has 1 entries for 2 studies"):
        plot.convergence([strong, weak], labels=["strong"])
    with pytest.raises(TypeError, match="labels must be a sequence"):
        plot.convergence(strong, labels="strong")


def test_convergence_draws_each_reference_slope_once_per_axes():
    strong, weak = _studies()
    ax = plot.convergence(strong, reference_orders=(1, 2))
    plot.convergence(weak, ax=ax, reference_orders=(1, 2))
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(dashed) == 2
    assert sorted(t.get_text() for t in ax.texts) == ["slope -1", "slope -2"]
    # both calls' studies are in the legend, and the slopes hang from the first study's first error
    assert len(ax.get_legend().get_texts()) == 2
    assert dashed[0].get_ydata()[0] == pytest.approx(strong.errors[0])


def _visible_labels(axis, minor):
    ticks = axis.get_minor_ticks() if minor else axis.get_major_ticks()
    lo, hi = sorted(axis.get_view_interval())
    return [t.label1 for t in ticks if t.label1.get_visible() and t.label1.get_text()
            and lo <= t.get_loc() <= hi]


def _assert_log_labels_readable(ax):
    ax.figure.canvas.draw()
    renderer = ax.figure.canvas.get_renderer()
    for axis, lim in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        if axis.get_scale() != "log":
            continue
        if np.log10(max(lim) / min(lim)) > 1:
            assert _visible_labels(axis, minor=True) == [], "minor ticks labelled on a log axis over a decade"
        labels = _visible_labels(axis, minor=False) + _visible_labels(axis, minor=True)
        assert len(labels) >= 2, "a log axis needs at least two labelled ticks to be read"
        boxes = sorted((lab.get_window_extent(renderer) for lab in labels),
                       key=lambda b: b.x0 if axis is ax.xaxis else b.y0)
        for a, b in zip(boxes, boxes[1:]):
            assert not a.overlaps(b), "tick labels overlap"


def test_log_axes_label_no_minor_ticks_and_no_overlap():
    # the shape of notebook 01's first figure: 1.5 decades in x and y, where
    # matplotlib on its own labels 2x10^1, 3x10^1, ... and they collide
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ns = np.array([16, 32, 64, 128, 256, 512])
    ax.loglog(ns, 10 / ns)
    _assert_log_labels_readable(plot.log_ticks(ax, xticks=ns))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["16", "32", "64", "128", "256", "512"]
    fig, ax = plt.subplots()
    ax.loglog([1, 1000], [0.3, 0.5])  # less than a decade in y
    _assert_log_labels_readable(plot.log_ticks(ax))
    strong, weak = _studies()
    _assert_log_labels_readable(plot.convergence([strong, weak]))


def test_figures_from_the_helpers_keep_their_labels_inside_when_saved():
    import io

    gm = ds.datasets.eight_gaussians()
    tr = ds.forward(VP, gm.sample(1000, rng=4), steps=10, rng=5, save_every=5)
    axes = plot.marginals(tr, [0.0, 0.5, 1.0], exact=gm, process=VP)
    fig = axes[0].figure
    assert fig.get_layout_engine() is not None
    fig.savefig(io.BytesIO(), dpi=80)  # a plain savefig, no bbox_inches="tight"
    renderer = fig.canvas.get_renderer()
    page = fig.bbox
    for a in axes:
        for text in (a.xaxis.label, a.yaxis.label, a.title, *_visible_labels(a.xaxis, minor=False),
                     *_visible_labels(a.yaxis, minor=False)):
            if text.get_visible() and text.get_text():
                box = text.get_window_extent(renderer)
                assert page.x0 - 0.5 <= box.x0 and box.x1 <= page.x1 + 0.5, text.get_text()
                assert page.y0 - 0.5 <= box.y0 and box.y1 <= page.y1 + 0.5, text.get_text()


@pytest.fixture
def tour_figures(monkeypatch):
    """The figures python -m diffsde draws, by name, kept open instead of saved."""
    from diffsde import __main__ as cli

    figures = {}
    monkeypatch.setattr(cli.Report, "figure", lambda self, fig, name: figures.__setitem__(name, fig))
    return cli, figures


def _boxes_overlap(a, b):
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_tour_sample_panels_show_the_data_and_each_distance_without_collisions(tour_run):
    cli, figures, out = tour_run.cli, tour_run.figures, tour_run.out
    assert tour_run.code == 0
    for process in ("vp", "ve"):
        fig = figures[f"samples_{process}"]
        assert fig.get_layout_engine() is not None
        panels = [a for a in fig.axes if a.axison]
        assert panels[0].get_title().startswith("data")
        # the figure shows the fine step count (the table also has the coarse one)
        rows = [row for row in read_table(out / f"samplers_{process}.csv")
                if row[1] == str(TOUR_STEPS) or row[1].startswith("adaptive")]
        assert len(panels) == len(rows) + 1
        for a, row in zip(panels[1:], rows):
            label, value, floor = row[0], float(row[2]), float(row[3])
            first, second = a.get_title().split("\n")[:2]
            assert first == label
            assert second == f"sliced W2 {value:.3g}, floor {floor:.3g}"
        assert f"sliced W2 ({cli.PROJECTIONS} random projections)" in fig.get_suptitle()
        # the shared run's figures may have been closed since (plt.close("all") in
        # another test leaves a figure a bare canvas): draw on an Agg canvas of its own
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        FigureCanvasAgg(fig)
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        for a in panels:  # each column shows its x tick labels on its lowest panel
            below = [b for b in panels if b is not a and np.isclose(b.get_position().x0, a.get_position().x0)
                     and b.get_position().y0 < a.get_position().y0]
            assert below or _visible_labels(a.xaxis, minor=False), a.get_title()
        texts = []
        for a in panels:
            texts += [a.title] + _visible_labels(a.xaxis, minor=False) + _visible_labels(a.yaxis, minor=False)
        boxes = [(t, t.get_window_extent(renderer)) for t in texts]
        for i, (t1, b1) in enumerate(boxes):
            for t2, b2 in boxes[i + 1:]:
                assert not _boxes_overlap(b1, b2), f"{t1.get_text()!r} collides with {t2.get_text()!r}"


def read_table(path):
    import csv

    with open(path) as fh:
        return list(csv.reader(fh))[1:]


def test_sample_figure_frames_the_clusters_and_counts_the_points_outside(tour_figures, tmp_path):
    # 4,000 paths: every sample is drawn, so the count in the title can be
    # checked against the points themselves
    cli, figures = tour_figures
    assert cli.main(["sample", "--corrector", "--paths", "4000", "--steps", "200", "--quiet",
                     "--out", str(tmp_path)]) == 0
    fig = figures["sample_vp_em"]
    ax = fig.axes[-1]
    x = ax.collections[0].get_offsets()
    assert len(x) == 4000 and np.abs(x).max() > 8  # the corrector throws a few paths far out
    data = ds.datasets.eight_gaussians()
    (lo_x, hi_x), (lo_y, hi_y) = ax.get_xlim(), ax.get_ylim()
    assert -4 < lo_x < -2.0 and 2.0 < hi_x < 4 and -4 < lo_y < -2.0 and 2.0 < hi_y < 4
    assert np.all(np.abs(data.means) < 2.0 + 1e-12)
    outside = int(np.count_nonzero((x[:, 0] < lo_x) | (x[:, 0] > hi_x) | (x[:, 1] < lo_y) | (x[:, 1] > hi_y)))
    assert outside > 0
    assert f"{outside:,} of 4,000 outside the frame" in ax.get_title()


DERIVATION_PAGES = {"000": "000-smld-as-ve-sde.md", "001": "001-reverse-sde-bayes-taylor.md",
                    "002": "002-ddpm-as-vp-sde.md", "003": "003-euler-maruyama-wiener.md",
                    "004": "004-fokker-planck-alpha-family.md"}


def test_notebooks_cite_derivation_pages_and_are_stored_without_outputs():
    import json
    import pathlib
    import re

    folder = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
    notebooks = sorted(folder.glob("*.ipynb"))
    assert len(notebooks) >= 7
    for path in notebooks:
        cells = json.loads(path.read_text())["cells"]
        text = "\n".join("".join(c["source"]) for c in cells)
        assert not re.search(r"\bseeds?\b", text, flags=re.IGNORECASE), f"{path.name} mentions a seed"
        for number, target in re.findall(r"\[derivation (\d{3})\]\(([^)]*)\)", text):
            assert target == f"../docs/derivations/{DERIVATION_PAGES[number]}", (path.name, target)
        own = {"01": "000", "02": "002", "03": "001", "04": "003", "05": "004"}.get(path.name[:2])
        if own is not None:  # each derivation notebook links its own derivation in its title
            assert f"[derivation {own}](" in "".join(cells[0]["source"]).splitlines()[0], path.name
        for c in cells:
            if c["cell_type"] == "code":
                assert c["outputs"] == [] and c["execution_count"] is None, path.name
