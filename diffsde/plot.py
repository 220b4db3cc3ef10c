"""Matplotlib helpers for trajectories, marginals, convergence studies and
Fokker-Planck densities (matplotlib is imported when a helper is called).

Each helper takes ``ax=None`` (a new figure when none is given), returns
the axes it drew on and passes ``**kwargs`` to its main artist.
"""
import numpy as np

from ._optional import require
from ._validation import shown
from .simulate import forward


def _axes(ax, ncols=1, figsize=None):
    if ax is not None:
        return ax
    plt = require("matplotlib.pyplot", "diffsde.plot")
    # constrained layout keeps tick and axis labels inside the figure when it
    # is saved with a plain savefig (no bbox_inches="tight")
    if ncols == 1:
        return plt.subplots(figsize=figsize, layout="constrained")[1]
    return plt.subplots(1, ncols, figsize=figsize or (4 * ncols, 3.6), squeeze=False, layout="constrained")[1][0]


def log_ticks(ax, xticks=None):
    """Readable tick labels on the log axes of ``ax``.

    Matplotlib labels minor ticks (2x10^1, 3x10^1, ...) whenever a log axis
    shows fewer than two powers of ten, and those labels overlap. This
    keeps minor ticks unlabelled, labels the major ticks, and on an axis
    that shows fewer than two powers of ten puts majors at 1, 2 and 5 times
    powers of ten (written with ``%g``) so that at least two ticks carry a
    label.

    Parameters
    ----------
    ax : matplotlib Axes
        Call after the data are drawn (the span is read from the view limits).
    xticks : sequence of positive numbers, optional
        Label the x axis exactly at these values (e.g. the step counts of a
        convergence study), written with ``%g``.

    Returns
    -------
    ax
    """
    from matplotlib.ticker import FixedLocator, LogLocator, NullFormatter, StrMethodFormatter

    for axis, scale, limits in ((ax.xaxis, ax.get_xscale(), ax.get_xlim()),
                                (ax.yaxis, ax.get_yscale(), ax.get_ylim())):
        if scale != "log":
            continue
        axis.set_minor_formatter(NullFormatter())
        lo, hi = sorted(limits)
        if lo > 0 and np.floor(np.log10(hi)) - np.ceil(np.log10(lo)) < 1:  # fewer than two powers of ten
            axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(StrMethodFormatter("{x:g}"))
    if xticks is not None:
        values = np.unique(np.asarray(xticks, dtype=float))
        ax.xaxis.set_major_locator(FixedLocator(values))
        ax.xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    return ax


def _saved_index(tr, t):
    ts = np.asarray(tr.ts)
    k = int(np.argmin(np.abs(ts - t)))
    if not np.isclose(ts[k], t, rtol=1e-9, atol=1e-12 * max(1.0, abs(t))):
        raise ValueError(f"t = {shown(t)} is not a saved time of the trajectory (saved: {ts.round(6).tolist()}); "
                         f"run with save_every or save_at")
    return k


def trajectories(tr, n_paths=50, quantiles=(0.05, 0.5, 0.95), coord=0, ax=None, **kwargs):
    """Sample paths of one coordinate against time, over a quantile fan.

    Parameters
    ----------
    tr : Trajectory
        Saved at several times (``save_every``).
    n_paths : int
        Paths drawn individually, evenly spaced over the batch.
    quantiles : tuple
        The fan spans the outer two; the middle ones are drawn as lines.
    coord : int
        Which event coordinate (for states of shape (batch, d)).
    """
    if len(tr.ts) < 2:
        raise ValueError("the trajectory saved fewer than 2 states; run with save_every")
    ax = _axes(ax)
    xs = np.asarray(tr.xs, dtype=np.float64)
    xs = xs.reshape(xs.shape[0], xs.shape[1], -1)[:, :, coord]
    q = np.quantile(xs, sorted(quantiles), axis=1)
    ax.fill_between(tr.ts, q[0], q[-1], color="C0", alpha=0.15,
                    label=f"{100 * min(quantiles):g}-{100 * max(quantiles):g}% of {xs.shape[1]:,} paths")
    for row, level in zip(q[1:-1], sorted(quantiles)[1:-1]):
        ax.plot(tr.ts, row, color="C0", lw=1.5, label=f"{100 * level:g}% quantile")
    kwargs.setdefault("lw", 0.6)
    kwargs.setdefault("alpha", 0.6)
    # paths spread over the batch, not its first rows: a sorted x0 would
    # otherwise show only the paths that start at one end
    picks = np.unique(np.linspace(0, xs.shape[1] - 1, min(n_paths, xs.shape[1])).round().astype(int))
    ax.plot(tr.ts, xs[:, picks], color=kwargs.pop("color", "C1"), **kwargs)
    ax.set(xlabel="t", ylabel=f"x[{coord}]" if tr.x.ndim > 1 else "x")
    if tr.ts[0] > tr.ts[-1]:
        ax.set_xlim(tr.ts[0], tr.ts[-1])  # reverse runs read right to left in t
    ax.legend(fontsize=8)
    return ax


def _exact_density(exact, process, t):
    """A function of x for the exact marginal at t, or None."""
    if exact is None:
        return None
    if hasattr(exact, "marginal") and hasattr(exact, "logpdf"):
        if process is None:
            raise ValueError("pass process= with a GaussianMixture as exact")
        marg = exact.marginal_law(process, t)
        return lambda x: np.exp(marg.logpdf(x))
    if callable(exact):
        return lambda x: exact(x, t)
    raise TypeError(f"exact must be a GaussianMixture or a callable density(x, t); got {shown(exact)}")


def marginals(tr, times, exact=None, process=None, ax=None, bins=80, **kwargs):
    """Histograms (1-D states) or scatter snapshots (2-D states) at saved
    times, against the exact density.

    Parameters
    ----------
    tr : Trajectory
    times : sequence of saved times
    exact : GaussianMixture (with ``process``) or callable density(x, t), optional
    ax : an Axes (1-D) or a sequence of Axes, one per time (2-D)

    Returns
    -------
    Axes (1-D) or array of Axes (2-D)
    """
    xs = np.asarray(tr.xs)
    one_d = xs.ndim == 2 or (xs.ndim == 3 and xs.shape[2] == 1)
    if one_d:
        ax = _axes(ax)
        for i, t in enumerate(times):
            sample = xs[_saved_index(tr, t)].ravel()
            color = f"C{i}"
            ax.hist(sample, bins=bins, density=True, histtype="step", color=color, label=f"t = {t:g}", **kwargs)
            density = _exact_density(exact, process, t)
            if density is not None:
                grid = np.linspace(*np.quantile(sample, [0.0005, 0.9995]), 400)
                ax.plot(grid, density(grid), "--", color=color, lw=1)
        ax.set(xlabel="x", ylabel="density")
        ax.set_ylim(top=1.3 * ax.get_ylim()[1])  # headroom: the legend must not hide a mode
        ax.legend(fontsize=8, title="histogram; dashed: exact" if exact is not None else None)
        return ax
    if xs.ndim != 3 or xs.shape[2] != 2:
        raise ValueError(f"marginals draws 1-D or 2-D states; got event shape {xs.shape[2:]}")
    axes = _axes(ax, ncols=len(times))
    kwargs.setdefault("s", 1)
    kwargs.setdefault("alpha", 0.3)
    for a, t in zip(np.atleast_1d(axes), times):
        sample = xs[_saved_index(tr, t)]
        a.scatter(sample[:, 0], sample[:, 1], **kwargs)
        density = _exact_density(exact, process, t)
        if density is not None:
            lo, hi = np.quantile(sample, [0.001, 0.999], axis=0)
            gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 120), np.linspace(lo[1], hi[1], 120))
            z = density(np.stack([gx.ravel(), gy.ravel()], axis=1)).reshape(gx.shape)
            a.contour(gx, gy, z, levels=6, colors="k", linewidths=0.6)
        a.set(title=f"t = {t:g}", xlabel="x[0]", ylabel="x[1]", aspect="equal")
    return axes


def convergence(study, ax=None, reference_orders=(1, 2), labels=None, **kwargs):
    """Log-log error against step count, with 2-standard-error bars, the
    fitted line and dashed reference slopes.

    Parameters
    ----------
    study : ConvergenceStudy or a list of them
    ax : matplotlib Axes, optional
        Calling again on the same axes adds the new studies; each reference
        slope is drawn once per axes.
    reference_orders : sequence of numbers
        Slopes ``-order`` drawn through the first error of the first study
        drawn on these axes.
    labels : sequence of str, optional
        One legend label per study (default: the study's kind); the fitted
        order is appended to each.
    **kwargs
        Passed to ``Axes.errorbar`` for every study.

    Returns
    -------
    ax
    """
    studies = list(study) if isinstance(study, (list, tuple)) else [study]
    if labels is not None:
        if isinstance(labels, str) or not hasattr(labels, "__len__"):
            raise TypeError(f"labels must be a sequence of str, one per study; got {shown(labels)}")
        if len(labels) != len(studies):
            raise ValueError(f"labels has {len(labels)} entries for {len(studies)} "
                             f"{'study' if len(studies) == 1 else 'studies'}; pass one label per study")
        if "label" in kwargs:
            raise TypeError("pass either label= (one study) or labels= (one per study), not both")
    ax = _axes(ax)
    for i, s in enumerate(studies):
        n = np.asarray(s.steps, dtype=float)
        style = dict(kwargs)
        style.setdefault("marker", "o")
        label = labels[i] if labels is not None else style.pop("label", f"{s.kind} error")
        style.pop("label", None)
        line = ax.errorbar(n, s.errors, yerr=2 * np.asarray(s.stderr), capsize=3,
                           label=f"{label}: order {s.fit.order:.2f}", **style)
        ax.plot(n, s.fit.constant * n ** (-s.fit.order), color=line[0].get_color(), lw=0.8)
    # the references hang from the first study ever drawn on these axes, so a
    # second call does not stack a second set of slopes
    anchor = getattr(ax, "_diffsde_reference_anchor", None)
    if anchor is None:
        anchor = ax._diffsde_reference_anchor = (np.asarray(studies[0].steps, dtype=float),
                                                 float(studies[0].errors[0]))
    n, e0 = anchor
    drawn = {line.get_gid() for line in ax.lines}
    for order in reference_orders:
        gid = f"diffsde-reference-slope-{order:g}"
        if gid in drawn:
            continue
        ax.plot(n, e0 * (n / n[0]) ** (-order), "k--", lw=0.6, alpha=0.6, gid=gid)
        # right-aligned above the line's end, so the text stays inside the axes
        ax.annotate(f"slope -{order:g}", (n[-1], e0 * (n[-1] / n[0]) ** (-order)), xytext=(0, 3),
                    textcoords="offset points", ha="right", va="bottom", fontsize=8)
    ax.set(xscale="log", yscale="log", xlabel="steps N", ylabel="error")
    steps = np.unique(np.concatenate([np.asarray(s.steps, dtype=float) for s in studies]
                                     + [np.asarray(getattr(ax, "_diffsde_steps", []), dtype=float)]))
    ax._diffsde_steps = steps
    log_ticks(ax, xticks=steps)
    ax.legend(fontsize=8)
    return ax


def density_evolution(solution, particles=None, ax=None, n_overlays=5, **kwargs):
    """A heat map of a Fokker-Planck solution p(t, x), with particle
    histograms (a Trajectory saved at matching times) drawn over it as white
    curves, each scaled to sit to the right of its time."""
    ax = _axes(ax)
    ts, x, p = np.asarray(solution.ts), solution.x, solution.p
    order = np.argsort(ts)
    kwargs.setdefault("cmap", "viridis")
    mesh = ax.pcolormesh(ts[order], x, p[order].T, shading="nearest", **kwargs)
    ax.figure.colorbar(mesh, ax=ax, label="density")
    if particles is not None:
        span = (ts.max() - ts.min()) / (2 * n_overlays)
        # each histogram extends to the right of its time: leave out the last time
        picks = np.linspace(0, len(particles.ts) - 1, n_overlays + 1)[:-1].round().astype(int)
        for k in np.unique(picks):
            sample = np.asarray(particles.xs[k]).ravel()
            hist, edges = np.histogram(sample, bins=60, range=(x[0], x[-1]), density=True)
            t = particles.ts[k]
            ax.plot(t + span * hist / max(hist.max(), 1e-300), 0.5 * (edges[:-1] + edges[1:]),
                    color="w", lw=0.8)
    ax.set(xlabel="t", ylabel="x", xlim=(ts.min(), ts.max()),
           title="Fokker-Planck density; white: particle histograms")
    return ax


def compare_chain_sde(chain, x0, rng=0, n_paths=5, ax=None, **kwargs):
    """A DDPM or SMLD chain (dots) next to Euler-Maruyama on its SDE limit
    (lines), driven by the same draws interval by interval."""
    ax = _axes(ax)
    x0 = np.asarray(x0, dtype=np.float64)[:n_paths]
    tr_chain = forward(chain, x0, rng=rng, save_every=1)
    tr_sde = forward(chain.as_sde(), x0, steps=chain.N, rng=rng, save_every=1)
    for i in range(x0.shape[0]):
        color = f"C{i % 10}"
        ax.plot(tr_sde.ts, tr_sde.xs[:, i], color=color, lw=1, **kwargs)
        ax.plot(tr_chain.ts, tr_chain.xs[:, i], "o", color=color, ms=2.5)
    ax.set(xlabel="t", ylabel="x", title=f"{type(chain).__name__} (dots) and its SDE by EM (lines), "
                                         f"N = {chain.N}, same draws")
    return ax


#: Markers cycled with the colours, so a dozen samplers stay distinguishable.
_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "<", ">", "h", "*", "p")


def _sampler_style(i):
    return {"color": f"C{i % 10}" if i < 10 else _tab20(i), "marker": _MARKERS[i % len(_MARKERS)]}


def _tab20(i):
    cm = require("matplotlib", "diffsde.plot").colormaps["tab20"]
    return cm((2 * (i - 10) + 1) % 20)


def error_vs_nfe(result, axes=None, **kwargs):
    """Each sampler's error against its score evaluations, log-log, one
    panel for the deterministic samplers and one for the stochastic ones
    (a sampler keeps its colour and marker in both panels and across calls
    with the same sampler list).

    Parameters
    ----------
    result : ErrorCurves
        From :func:`diffsde.analysis.error_vs_nfe`. Monte Carlo errors are
        drawn with 2-standard-error bars and the same-law floor as a grey
        band (an exact sampler reads the floor, not 0).
    axes : sequence of two Axes, optional
    **kwargs
        Passed to ``Axes.errorbar`` (``Axes.plot`` for exact errors).

    Returns
    -------
    list of Axes
    """
    groups = [(True, "deterministic samplers (ODE)"), (False, "stochastic samplers (SDE)")]
    groups = [(flag, title) for flag, title in groups if any(c.deterministic == flag for c in result.curves)]
    if axes is None:
        plt = require("matplotlib.pyplot", "diffsde.plot")
        axes = plt.subplots(1, len(groups), figsize=(5.2 * len(groups), 4.4), squeeze=False, sharey=True,
                            layout="constrained")[1][0]
    axes = list(np.atleast_1d(axes))
    if len(axes) < len(groups):
        raise ValueError(f"axes must hold {len(groups)} Axes (one per group); got {len(axes)}")
    # ticks at the budgets, not at every run's NFE (a two-stage method's
    # 2N - 1 would crowd the budget 2N)
    ticks = result.budgets or np.unique(np.concatenate([c.nfe for c in result.curves]))
    for ax, (flag, title) in zip(axes, groups):
        for i, c in enumerate(result.curves):
            if c.deterministic != flag:
                continue
            style = {**_sampler_style(i), "ms": 4, "lw": 1.2, **kwargs}
            if c.stderr is None:
                ax.plot(c.nfe, c.error, label=c.label, **style)
            else:
                ax.errorbar(c.nfe, c.error, yerr=2 * c.stderr, capsize=2, label=c.label, **style)
        if result.floor is not None:
            ax.axhspan(*result.floor_band, color="0.85", zorder=0, label="same-law 90% band")
            ax.axhline(result.floor, color="0.5", ls="--", lw=0.8, zorder=0, label="same-law median (floor)")
        ax.set(xscale="log", yscale="log", xlabel="score evaluations (NFE)", title=title)
        log_ticks(ax, xticks=ticks)
        ax.legend(fontsize=7, ncol=2 if len(ax.get_legend_handles_labels()[0]) > 8 else 1)
    axes[0].set_ylabel(("exact " if result.exact else "") + result.metric + " to the target")
    return axes


class Animation:
    """Particles flowing from the prior to the data, one panel per run.

    In Jupyter the object shows itself as an inline HTML player
    (``FuncAnimation.to_jshtml``); :meth:`save` writes a GIF (Pillow).

    Attributes
    ----------
    figure : matplotlib Figure
    animation : matplotlib.animation.FuncAnimation
    frames : int
        Number of frames.
    index : ndarray (n_panels, frames)
        The saved state each panel shows in each frame.
    limits : ((float, float), (float, float))
        The x and y limits every panel uses.
    """

    def __init__(self, figure, animation, frames, index, limits, draw):
        self.figure, self.animation, self.frames = figure, animation, frames
        self.index, self.limits = index, limits
        self._draw = draw

    def draw_frame(self, f):
        """Draw frame ``f`` (0 <= f < frames) on :attr:`figure`; returns its artists."""
        if isinstance(f, bool) or not isinstance(f, (int, np.integer)) or not 0 <= f < self.frames:
            raise ValueError(f"f must be an int in [0, {self.frames}); got {shown(f)}")
        return self._draw(int(f))

    def to_html(self):
        """The inline HTML/JavaScript player."""
        return self.animation.to_jshtml()

    def _repr_html_(self):
        return self.to_html()

    def save(self, path, fps=10):
        """Write a GIF with Pillow (``path`` ending in .gif)."""
        from matplotlib.animation import PillowWriter

        self.animation.save(path, writer=PillowWriter(fps=fps))
        return path


def _states(tr, name):
    xs = np.asarray(getattr(tr, "xs", None) if not isinstance(tr, np.ndarray) else tr, dtype=np.float64)
    if xs.ndim != 3 or xs.shape[2] != 2 or xs.shape[0] < 1:
        raise ValueError(f"{name} must be a Trajectory saved with save_every (xs of shape (n_saved, batch, 2)) "
                         f"or such an array; got xs of shape {xs.shape}: animate draws 2-D states")
    ts = np.asarray(getattr(tr, "ts", np.arange(xs.shape[0])), dtype=np.float64)
    return xs, ts


def animate(trajectories, labels=None, *, data=None, n_points=1500, frames=None, limits=None, interval=100,
            tail=0.005, panel_size=3.0):
    """Animate reverse runs: the particles of each run flowing from the
    prior to the data, one panel per run, side by side.

    Parameters
    ----------
    trajectories : Trajectory, or a sequence or dict of them
        Runs saved along the way (``save_every=...``), 2-D states. A dict
        maps labels to runs.
    labels : sequence of str, optional
        Panel titles (default: the dict's keys, else "run 0", ...).
    data : array (n, 2), optional
        A data sample drawn faintly in every panel.
    n_points : int
        Particles drawn per panel (the first rows of the batch).
    frames : int, optional
        Number of frames (default: the most saved states of any run). Frame
        f shows, in each panel, the saved state nearest to the fraction
        f / (frames - 1) of that run, so runs of different step counts
        arrive together.
    limits : ((x0, x1), (y0, y1)), optional
        Default: the central 1 - 2 tail quantiles of every run's first and
        last states (and of ``data``), padded by 10%, so the prior and the
        data are both in view and far stragglers do not shrink them.
    interval : int
        Milliseconds between frames of the HTML player.

    Returns
    -------
    Animation
        Shows inline in Jupyter; ``.save("flow.gif")`` writes a GIF.
    """
    plt = require("matplotlib.pyplot", "diffsde.plot")
    from matplotlib.animation import FuncAnimation

    if isinstance(trajectories, dict):
        labels = list(trajectories) if labels is None else labels
        runs = list(trajectories.values())
    elif isinstance(trajectories, (list, tuple)):
        runs = list(trajectories)
    else:
        runs = [trajectories]
    if not runs:
        raise ValueError("trajectories must hold at least one run")
    labels = [f"run {i}" for i in range(len(runs))] if labels is None else list(labels)
    if len(labels) != len(runs):
        raise ValueError(f"labels has {len(labels)} entries for {len(runs)} runs")
    states = [_states(tr, f"trajectories[{i}]") for i, tr in enumerate(runs)]
    n_frames = max(xs.shape[0] for xs, _ in states) if frames is None else int(frames)
    if n_frames < 1:
        raise ValueError(f"frames must be >= 1; got {shown(frames)}")
    frac = np.linspace(0.0, 1.0, n_frames) if n_frames > 1 else np.ones(1)
    index = np.array([np.rint(frac * (xs.shape[0] - 1)).astype(int) for xs, _ in states])
    if limits is None:
        ends = [xs[k, :n_points] for xs, _ in states for k in (0, xs.shape[0] - 1)]
        if data is not None:
            ends.append(np.asarray(data, dtype=np.float64).reshape(-1, 2))
        pts = np.concatenate(ends)
        lo, hi = np.quantile(pts, [tail, 1 - tail], axis=0)
        pad = 0.1 * (hi - lo)
        limits = tuple((float(lo[i] - pad[i]), float(hi[i] + pad[i])) for i in range(2))
    n = len(runs)
    cols = min(n, 5)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(panel_size * cols, panel_size * rows + 0.3), squeeze=False,
                             sharex=True, sharey=True, layout="constrained")
    flat = axes.ravel()
    dots, titles = [], []
    for ax, (xs, ts), label in zip(flat, states, labels):
        if data is not None:
            d = np.asarray(data, dtype=np.float64).reshape(-1, 2)[:n_points]
            ax.scatter(d[:, 0], d[:, 1], s=1, color="0.8", rasterized=True)
        dots.append(ax.scatter(xs[0, :n_points, 0], xs[0, :n_points, 1], s=1.5, alpha=0.6, color="C0"))
        ax.set(xlim=limits[0], ylim=limits[1], aspect="equal")
        ax.tick_params(labelsize=7)
        titles.append(ax.set_title(label, fontsize=9))
    for ax in flat[n:]:
        ax.axis("off")

    def update(f):
        for p, ((xs, ts), dot, title, label) in enumerate(zip(states, dots, titles, labels)):
            k = index[p, f]
            dot.set_offsets(xs[k, :n_points])
            title.set_text(f"{label}\nt = {ts[k]:.3g}")
        return dots + titles

    update(0)
    anim = FuncAnimation(fig, update, frames=n_frames, interval=interval, blit=False)
    plt.close(fig)  # the Animation shows it; no second static copy in a notebook
    return Animation(fig, anim, n_frames, index, limits, update)
