"""python -m diffsde: the tour and its pieces.

    python -m diffsde [tour]   convergence of DDPM -> VP and SMLD -> VE, every
                               reverse sampler on a 2-D mixture at a coarse and a
                               fine step count, each tested against the data, and
                               every sampler's error against its score evaluations
                               (exact for Gaussian data), with an animation
    python -m diffsde sample   one sampler on one process, against the exact data
    python -m diffsde converge strong or weak order of Euler-Maruyama on one path

Each writes PNG figures and a Markdown/CSV table to --out (default
./diffsde-tour) and prints the table. --help on each subcommand lists its
options.
"""
import argparse
import csv
import os
import sys
import time
import warnings

import numpy as np

from . import (DDPM, SMLD, VESDE, VPSDE, GaussianMixture, SubVPSDE, analysis, datasets, forward, grids, methods,
               reverse, set_num_threads)
from .methods._registry import resolve as resolve_method
from .plot import animate, error_vs_nfe, log_ticks

PROCESSES = {"vp": lambda: VPSDE(0.1, 20.0), "ve": lambda: VESDE(0.01, 10.0), "subvp": lambda: SubVPSDE(0.1, 20.0)}
DATA = {"eight_gaussians": datasets.eight_gaussians, "bimodal_1d": datasets.bimodal_1d,
        "gaussian_1d": lambda: GaussianMixture([1.0], [[0.0]], [0.25])}
DATA_TEXT = {"eight_gaussians": "eight Gaussians of std 0.1 on the circle of radius 2",
             "bimodal_1d": "1-D modes at -2 and +2 of std 0.5, equal weights",
             "gaussian_1d": "1-D N(0, 0.5^2), a linear score"}
PROJECTIONS = 64      # directions of the tour's sliced W2 (2-D data)
NULL_PAIRS = 39       # same-law sample pairs behind each band and p-value
LEVEL = 0.05
#: The tour's samplers: every reverse method of the process (tested against
#: ``methods.available``), some with a second option setting.
_K_SAMPLERS = [(name, {}) for name in ("euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms",
                                       "dpmpp_2s_ancestral", "dpmpp_sde", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_3m_sde")]
SAMPLERS = {
    "vp": [("em", {}), ("em", {"alpha": 0.0}), ("em", {"alpha": 2.0}), ("ode_heun", {}),
           ("rk45", {}), ("reverse_diffusion", {}), ("ancestral", {}), ("ancestral", {"variance": "posterior"}),
           ("ddim", {}), ("ddim", {"eta": 1.0})] + _K_SAMPLERS + [("dpm_solver", {}), ("unipc", {}), ("plms", {})],
    "ve": [("em", {}), ("em", {"alpha": 0.0}), ("ode_heun", {}), ("rk45", {}), ("reverse_diffusion", {}),
           ("ancestral", {}), ("ddim", {})] + _K_SAMPLERS + [("dpm_solver", {}), ("unipc", {}), ("plms", {})],
}


class Report:
    """Progress lines on stderr and the tables written at the end."""

    def __init__(self, out, quiet=False):
        self.out, self.quiet, self.start = out, quiet, time.perf_counter()
        os.makedirs(out, exist_ok=True)

    def say(self, message):
        if not self.quiet:
            print(f"[{time.perf_counter() - self.start:5.1f} s] {message}", file=sys.stderr, flush=True)

    def table(self, name, header, rows, title, notes=()):
        path_csv = os.path.join(self.out, f"{name}.csv")
        with open(path_csv, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows)
        lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
        if notes:
            lines += [""] + [f"{note}\n" for note in notes]
        text = "\n".join(lines) + "\n"
        with open(os.path.join(self.out, "summary.md"), "a") as fh:
            fh.write(text + "\n")
        print(text)
        return text

    def figure(self, fig, name):
        path = os.path.join(self.out, f"{name}.png")
        if fig.get_layout_engine() is None:
            fig.tight_layout()
        fig.savefig(path, dpi=110)
        self.say(f"figure {path}")


def _pyplot(no_plots):
    if no_plots:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'diffsde[examples]'): tables only", file=sys.stderr)
        return None
    return plt


def _fmt(v, digits=4):
    return f"{v:.{digits}g}"


def _fit(steps, errors):
    """fit_order with its warning turned into a note of the table (see _fit_notes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", analysis.OrderFitWarning)
        return analysis.fit_order(steps, errors)


def _fit_notes(fit, what):
    if fit.ci is None:
        return [f"Note ({what}): two step counts, so no confidence interval for the order."]
    if fit.wide:
        return [f"Warning ({what}): the 95% CI of the order, [{fit.ci[0]:.3f}, {fit.ci[1]:.3f}], is wide "
                f"(half-width above {analysis.WIDE_CI_HALF_WIDTH}): the errors do not follow one power law over "
                "these step counts."]
    return []


# ---- figures ----------------------------------------------------------------------

def _frame(x, data, pad=0.1, tail=0.005):
    """Axis limits per coordinate that show the data and the bulk of a sample.

    The frame spans the data sample's range and the sample's central
    1 - 2 * tail quantiles, padded by ``pad`` of the width: a handful of
    far outliers (a diverged corrector path) no longer shrink the clusters
    to a dot, and a sample that misses the data altogether is still shown.
    Returns (lo, hi) and the number of rows of ``x`` outside the frame.
    """
    q_lo, q_hi = np.quantile(x, [tail, 1 - tail], axis=0)
    lo = np.minimum(data.min(axis=0), q_lo)
    hi = np.maximum(data.max(axis=0), q_hi)
    lo, hi = lo - pad * (hi - lo), hi + pad * (hi - lo)
    return lo, hi, _frame_count(x, lo, hi)


def _frame_count(x, lo, hi):
    return int(np.count_nonzero(np.any((x < lo) | (x > hi), axis=1)))


def _distance_text(dist, d, projections=True):
    name = "W1" if d == 1 else f"sliced W2 ({PROJECTIONS} proj.)" if projections else "sliced W2"
    floor = getattr(dist, "floor", None)
    return f"{name} {dist.value:.3g}" + (f", floor {floor:.3g}" if floor is not None else "")


def _outside_text(outside, n):
    return f"{outside:,} of {n:,} outside the frame" if outside else f"all {n:,} inside the frame"


def _scatter_panel(ax, x, lo, hi, title, means=None, n_show=3000, color="C0"):
    ax.scatter(x[:n_show, 0], x[:n_show, 1], s=1, alpha=0.4, color=color, rasterized=True)
    if means is not None:
        ax.scatter(means[:, 0], means[:, 1], marker="x", color="k", s=20, lw=1)
    ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), aspect="equal")
    ax.set_title(title, fontsize=9)


def samples_figure(plt, process, results, data_x, means, paths, steps):
    """One panel for the data sample, then one per sampler, each titled with
    its distance to the data and its noise floor."""
    x_all = np.concatenate([x for x, _ in results.values()] + [data_x])
    lo, hi, _ = _frame(x_all, data_x)
    panels = len(results) + 1
    rows = -(-panels // 5)
    cols = -(-panels // rows)
    fig, axes = plt.subplots(rows, cols, figsize=(2.7 * cols, 3.0 * rows + 0.6), squeeze=False,
                             sharex=True, sharey=True, layout="constrained")
    flat = axes.ravel()
    _scatter_panel(flat[0], data_x, lo, hi, "data: a fresh sample\n(what the distances compare to)",
                   means, color="C2")
    for a, (label, (x, dist)) in zip(flat[1:], results.items()):
        title = f"{label}\n{_distance_text(dist, x.shape[1], projections=False)}"
        if getattr(dist, "pvalue", None) is not None:
            word = "consistent" if dist.consistent(LEVEL) else "distinguishable"
            title += f"\np = {dist.pvalue:.2f}: {word}"
        outside = _frame_count(x, lo, hi)
        if outside:
            title += f"\n{_outside_text(outside, len(x))}"
        _scatter_panel(a, x, lo, hi, title, means)
    for k, a in enumerate(flat[panels:], start=panels):
        a.axis("off")
        flat[k - cols].xaxis.set_tick_params(labelbottom=True)  # nothing below it carries the labels
    fig.suptitle(f"reverse samplers on {process.upper()}: {paths:,} paths, {steps} steps, exact score\n"
                 f"x: mixture means; 3,000 points per panel\n"
                 f"distance: sliced W2 ({PROJECTIONS} random projections) to a fresh data sample\n"
                 f"floor: its median between samples of the data law itself\n"
                 f"p: permutation p-value; consistent means p > {LEVEL:g}", fontsize=10)
    return fig


# ---- pieces ---------------------------------------------------------------------

def chain_convergence(report, paths, seed):
    """RMS over paths of chain - SDE (EM, same draws) against N, for DDPM/VP and SMLD/VE."""
    x0 = datasets.bimodal_1d().sample(paths, rng=seed)
    ladder = np.array([32, 64, 128, 256, 512, 1024])
    rows, curves, notes = [], {}, []
    for name, sde, make in (("DDPM -> VP", VPSDE(0.1, 20.0), DDPM.from_sde),
                            ("SMLD -> VE", VESDE(0.01, 10.0), SMLD.from_sde)):
        rms = []
        for n in ladder:
            diff = forward(make(sde, int(n)), x0, rng=seed + 1).x - forward(sde, x0, steps=int(n), rng=seed + 1).x
            rms.append(float(np.sqrt(np.mean(diff**2))))
        fit = _fit(ladder, rms)
        curves[name] = (ladder, np.array(rms), fit)
        rows.append([name, _fmt(rms[0]), _fmt(rms[-1]), f"{fit.order:.3f}", fit.ci_text()])
        notes += _fit_notes(fit, name)
        report.say(f"{name}: order {fit.order:.3f}")
    report.table("chain_convergence", ["pair", "rms N=32", "rms N=1024", "order", "95% CI"], rows,
                 f"A chain and its SDE limit on the same draws: RMS path difference at t = T ({paths:,} paths, "
                 f"{DATA_TEXT['bimodal_1d']})", notes)
    return curves


def em_convergence(report, process, kind, direction, paths, seed, data_name="bimodal_1d", t_end=0.01):
    """Strong or weak order of EM on one Brownian path, with the setting in the title."""
    sde = PROCESSES[process]()
    data = DATA[data_name]()
    ladder = np.array([32, 64, 128, 256, 512])
    reference = 16 * int(ladder[-1])
    kw = {} if direction == "forward" else {"score": data.score(sde), "direction": "reverse", "t_end": t_end}
    x0 = data.sample(paths, rng=seed) if direction == "forward" else data.marginal_law(sde, sde.T).sample(paths, rng=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", analysis.OrderFitWarning)
        if kind == "strong":
            steps, reference, ref, runs = analysis._coupled_runs(sde, x0, ladder, kw.pop("score", None),
                                                                 kw.pop("direction", "forward"), None, reference,
                                                                 seed + 1, kw)
            study = analysis._strong_study(steps, reference, ref, runs)
        else:
            study = analysis.weak_error(sde, x0, ladder, reference_steps=reference, rng=seed + 1, **kw)
    header = ["N", f"{kind} error", "std err"]
    rows = [[int(n), _fmt(e), _fmt(s)] for n, e, s in zip(study.steps, study.errors, study.stderr)]
    notes = _fit_notes(study.fit, f"{kind} order")
    swapped = kind == "strong" and direction == "reverse" and data.means.shape[0] > 1
    if swapped:
        # which mode each path ends nearest to, and how much of the mean-square error the swaps carry
        def mode(x):
            x = np.asarray(x, np.float64).reshape(paths, -1)
            return np.argmin(((x[:, None, :] - data.means[None]) ** 2).sum(axis=2), axis=1)

        ref_mode = mode(ref)
        header.append("paths in another mode than the reference")
        shares = []
        for row, x in zip(rows, runs):
            other = mode(x) != ref_mode
            sq = ((np.asarray(x, np.float64) - ref) ** 2).reshape(paths, -1).sum(axis=1)
            shares.append(sq[other].sum() / sq.sum())
            row.append(f"{other.mean():.2%}")
    rows.append(["order", f"{study.fit.order:.3f}", f"CI {study.fit.ci_text()}"] + [""] * swapped)
    where = (f"from x0 ~ data at t = 0 to T = {sde.T:g}" if direction == "forward" else
             f"with the exact score, from the exact marginal at T = {sde.T:g} down to t_end = {t_end:g}")
    title = (f"{kind.capitalize()} error of Euler-Maruyama, {direction} {process.upper()}, data {data_name} "
             f"({DATA_TEXT[data_name]}), {paths:,} paths {where}; N = {ladder[0]}..{ladder[-1]} steps against "
             f"{study.reference_steps} steps on the same Brownian path")
    if swapped and study.fit.order < 0.9:
        notes.append(
            f"Why the order is below 1: the reverse SDE pulls paths apart near the boundary between the modes "
            f"(by a factor of about e^10 from T to t_end, on VE, VP and sub-VP alike), so a discretization error "
            f"sends a few paths to the other mode, an error of the modes' separation. Their fraction falls like 1/N, "
            f"which adds an N^(-1/2) term to the RMS error; they carry {min(shares):.0%} to {max(shares):.0%} of the "
            f"mean-square error here. EM's strong order 1 returns only at far finer steps; with Gaussian data "
            f"(a linear score, one mode) the same study measures order 1: python -m diffsde converge --kind strong "
            f"--direction reverse --data gaussian_1d.")
    report.table(f"{kind}_{direction}_{process}", header, rows, title, notes)
    return study


def _distance_label(d):
    return f"sliced W2 to data ({PROJECTIONS} projections)" if d > 1 else "W1 to data"


def _distance(x, fresh, seed):
    """The tour's distance (value only): sliced W2 over PROJECTIONS fixed directions in d > 1, W1 in 1-D."""
    if x.shape[1] > 1:
        return analysis.sliced_wasserstein(x, fresh, PROJECTIONS, rng=seed, n_permutations=0).value
    return analysis.wasserstein_1d(x[:, 0], fresh[:, 0], n_permutations=0).value


_NULL_CACHE = {}


def _same_law_distances(data_name, data, fresh, seed):
    """NULL_PAIRS distances from `fresh` to further exact samples of the data law of the same size.

    If a sampler is exact, its distance to `fresh` is one more draw of this
    law (the samples are i.i.d. given `fresh`), so its rank among them is a
    test of exact level (Barnard 1963; Phipson & Smyth 2010)."""
    key = (data_name, fresh.shape, seed)
    if key not in _NULL_CACHE:  # the VP and VE tables share the data sample, hence the null
        gen = np.random.default_rng([seed, 14])  # a seed no sampler or data draw uses
        n = fresh.shape[0]
        _NULL_CACHE.clear()
        _NULL_CACHE[key] = np.array([_distance(data.sample(n, rng=gen).reshape(n, -1), fresh, seed)
                                     for _ in range(NULL_PAIRS)])
    return _NULL_CACHE[key]


def reverse_samplers(report, process, data_name, paths, steps, seed, dtype, methods=None):
    """Every reverse sampler from the exact marginal at T with the exact score, at one or several step
    counts, each tested against the data: distance, same-law band, p-value and verdict."""
    sde = PROCESSES[process]()
    requested = methods or SAMPLERS.get(process, [("em", {}), ("em", {"alpha": 0.0}), ("ode_heun", {}), ("rk45", {})])
    # a name the process does not offer fails now, not after the same-law band
    records = {method: resolve_method(sde, method, "reverse") for method, _ in requested}
    data = DATA[data_name]()
    x_T = data.marginal_law(sde, sde.T).sample(paths, rng=seed).astype(dtype)
    fresh = data.sample(paths, rng=seed + 1).reshape(paths, -1)
    null = _same_law_distances(data_name, data, fresh, seed)
    step_list = [steps] if np.ndim(steps) == 0 else list(steps)
    rows, results = [], {}
    for n_steps in step_list:
        for method, kw in requested:
            label = method + "".join(f", {k}={v}" for k, v in kw.items())
            tic = time.perf_counter()
            # an adaptive method (rk45) chooses its own steps (to rtol = atol = 1e-5)
            adaptive = records[method].adaptive
            if adaptive and n_steps != step_list[-1]:
                continue  # it ignores the step count: one run, with the finest row
            tr = reverse(sde, data, x_T, None if adaptive else n_steps, method=method, rng=seed + 2, **kw)
            taken = f"adaptive, {tr.accepted} accepted" if adaptive else n_steps
            seconds = time.perf_counter() - tic
            x = np.asarray(tr.x, dtype=np.float64).reshape(paths, -1)
            dist = analysis.Distance.from_null(_distance(x, fresh, seed), null, (paths, paths))
            mean_error = float(np.max(np.abs(x.mean(axis=0) - data.weights @ data.means)))
            if n_steps == step_list[-1]:
                results[label] = (x, dist)
            verdict = "consistent" if dist.consistent(LEVEL) else "distinguishable"
            rows.append([label, taken, _fmt(dist.value, 3), _fmt(dist.floor, 3),
                         f"[{dist.floor_low:.3g}, {dist.floor_high:.3g}]", f"{dist.pvalue:.3f}", verdict,
                         _fmt(mean_error, 3), tr.nfe, f"{seconds:.2f}"])
            report.say(f"{process} {label}, {taken} steps: {_distance_label(data.d)} {dist.value:.3g}, "
                       f"{dist.verdict(LEVEL)}")
    band = f"{100 * (analysis.BAND[1] - analysis.BAND[0]):g}%"
    confidence = f"{100 * (1 - LEVEL):g}%"
    header = ["method", "steps", _distance_label(data.d), "same-law median", f"same-law {band} band", "p-value",
              f"at the {confidence} level", "max abs mean error", "nfe", "seconds"]
    notes = [f"Each distance is to one fresh sample of {paths:,} data points. The same-law median and "
             f"{band} band are the distances from that sample to {NULL_PAIRS} further samples of the exact data law "
             f"of the same size: an exact sampler's distance is one more draw among them, so "
             f"p = (1 + #{{same-law distances >= distance}}) / {NULL_PAIRS + 1} is an exact test. "
             f"'distinguishable' means p <= {LEVEL:g} (the smallest p is 1/{NULL_PAIRS + 1}); 'consistent' "
             f"means this sample size cannot tell the sampler from the data. Each row is its own test at the "
             f"{confidence} level: were every sampler exact, about 1 row in {round(1 / LEVEL)} would still read "
             f"'distinguishable'."]
    if data.d > 1:
        notes.append(f"Sliced W2 is the root mean of W2^2 over {PROJECTIONS} random directions of the 2-D samples, "
                     f"not the W2 distance of the 2-D laws (it is smaller: about W2/sqrt(2) for a shift).")
    report.table(f"samplers_{process}", header, rows,
                 f"Reverse samplers on {process.upper()}, {data_name}, {paths:,} paths, "
                 f"{' and '.join(str(s) for s in step_list)} steps, exact score, from the exact marginal at T",
                 notes)
    return results, fresh


#: Gaussian data of the error-against-NFE section: two coordinates of
#: different variances, so no sampler is exact by symmetry.
GAUSS_2D = GaussianMixture([1.0], [[1.0, -1.0]], [[0.25, 0.05]])


def _budget_samplers(process):
    """Every reverse method the registry offers, at its defaults, and Euler
    on the probability-flow ODE (em with alpha = 0)."""
    names = [m for m in methods.available(process) if not methods.get(m).adaptive]  # rk45: no fixed budget
    return list(names) + ([("em", {"alpha": 0.0})] if "em" in names else [])


def _budget_rows(result):
    rows = []
    for c in result.curves:
        for k, (n, e) in enumerate(zip(c.nfe, c.error)):
            rows.append([c.label, "ODE" if c.deterministic else "SDE", int(c.steps[k]), int(n), _fmt(e, 3)]
                        + ([_fmt(c.stderr[k], 2)] if c.stderr is not None else []))
    return rows


def _winners(result):
    """The sampler of lowest error within each budget; with Monte Carlo
    errors only where it is below the same-law band (else no sampler is
    distinguishable from exact at this sample size)."""
    notes = []
    for b in result.budgets:
        label, err = result.best(b)
        if result.floor_band is not None and err <= result.floor_band[1]:
            notes.append(f"{b} evaluations: {label} ({_fmt(err, 3)}), within the same-law band: "
                         "indistinguishable from an exact sampler at this sample size")
        else:
            notes.append(f"{b} evaluations: {label} ({_fmt(err, 3)})")
    return "Lowest error within each budget: " + "; ".join(notes) + "."


def sampler_budgets(report, plt, paths, seed, quick):
    """Error against score evaluations for every sampler: the exact W2 on
    2-D Gaussian data and Monte Carlo sliced W2 on eight Gaussians (VP,
    logSNR grid); a figure of both and an animation of the particles."""
    vp = PROCESSES["vp"]()
    samplers = _budget_samplers(vp)
    exact = analysis.error_vs_nfe(vp, GAUSS_2D, (4, 8, 16, 32, 64, 128, 256), samplers)
    report.table("error_vs_nfe_gaussian", ["sampler", "kind", "steps", "nfe", "exact W2"], _budget_rows(exact),
                 "Exact W2 of each sampler's output law to the marginal at t_end = 1e-3: VP, logSNR grid, 2-D "
                 "Gaussian data N((1, -1), diag(0.25, 0.05)), exact score, from the exact marginal (a moment "
                 "recursion through the step table: no Monte Carlo error)", [_winners(exact)])
    budgets = (4, 8, 16, 32) if quick else (4, 8, 16, 32, 64)
    mix = analysis.error_vs_nfe(vp, datasets.eight_gaussians(), budgets, samplers, paths=min(paths, 20_000),
                                repeats=3, n_projections=PROJECTIONS, rng=seed)
    report.table("error_vs_nfe_mixture", ["sampler", "kind", "steps", "nfe", mix.metric, "std err"],
                 _budget_rows(mix),
                 f"Sliced W2 to the marginal at t_end = 1e-3 on eight Gaussians ({DATA_TEXT['eight_gaussians']}): "
                 f"VP, logSNR grid, mean of 3 runs of {min(paths, 20_000):,} paths",
                 [f"Same-law floor (two samples of the target): median {_fmt(mix.floor, 3)}, 90% band "
                  f"[{_fmt(mix.floor_band[0], 3)}, {_fmt(mix.floor_band[1], 3)}]; an exact sampler reads the floor.",
                  _winners(mix)])
    if plt is None:
        return exact, mix
    fig, axes = plt.subplots(2, 2, figsize=(11, 9), layout="constrained")
    error_vs_nfe(exact, axes=axes[0])
    error_vs_nfe(mix, axes=axes[1])
    for ax in axes[0]:
        ax.set_title(f"Gaussian data, exact: {ax.get_title()}", fontsize=10)
    for ax in axes[1]:
        ax.set_title(f"eight Gaussians, Monte Carlo: {ax.get_title()}", fontsize=10)
    fig.suptitle("Error against score evaluations, VP, logSNR grid, exact score", fontsize=11)
    report.figure(fig, "error_vs_nfe")
    plt.close(fig)
    gm = datasets.eight_gaussians()
    runs = {}
    for entry in samplers[:8]:
        name, kw = (entry, {}) if isinstance(entry, str) else entry
        n = analysis._steps_within(16, lambda n: methods.table(vp, name, grids.logsnr(vp, n), **kw).nfe)
        label = name + "".join(f", {k}={v}" for k, v in kw.items())
        runs[f"{label}\n(16 evaluations)"] = reverse(vp, gm, None, ts=grids.logsnr(vp, n),
                                                      shape=(800, 2), method=name, save_every=1, rng=seed, **kw)
    anim = animate(runs, data=gm.sample(800, rng=seed + 1), frames=17, panel_size=2.6)
    path = os.path.join(report.out, "flow.gif")
    anim.save(path, fps=4)
    report.say(f"animation {path}")
    return exact, mix


# ---- subcommands ------------------------------------------------------------------

def cmd_tour(args):
    report = Report(args.out, args.quiet)
    open(os.path.join(args.out, "summary.md"), "w").close()
    plt = _pyplot(args.no_plots)
    paths = 2000 if args.quick else args.paths
    report.say("1/4 chains and their SDE limits")
    curves = chain_convergence(report, min(paths, 4000), args.seed)
    report.say("2/4 strong order of Euler-Maruyama on one Brownian path")
    study = em_convergence(report, "vp", "strong", "forward", min(paths, 4000), args.seed)
    report.say("3/4 reverse samplers on eight Gaussians")
    samples = {}
    for process in ("vp", "ve"):
        steps = (args.coarse_steps, args.steps) if args.coarse_steps else args.steps
        samples[process] = reverse_samplers(report, process, "eight_gaussians", paths, steps, args.seed, args.dtype)
    if plt is not None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
        for name, (n, rms, fit) in curves.items():
            axes[0].loglog(n, rms, "o-", label=f"{name}: order {fit.order:.2f}")
        axes[0].loglog(n, curves["DDPM -> VP"][1][0] * n[0] / n, "k--", lw=0.7, label="slope -1")
        axes[0].set(xlabel="steps N", ylabel="RMS of chain - SDE at T", title="chains converge to their SDEs")
        axes[0].legend(fontsize=8)
        log_ticks(axes[0], xticks=n)
        study.plot(ax=axes[1])
        axes[1].set_title("EM strong error on one Brownian path (VP)")
        report.figure(fig, "convergence")
        gm = datasets.eight_gaussians()
        for process, (results, fresh) in samples.items():
            fig = samples_figure(plt, process, results, fresh, gm.means, paths, args.steps)
            report.figure(fig, f"samples_{process}")
    report.say("4/4 error against score evaluations, every sampler")
    sampler_budgets(report, plt, paths, args.seed, args.quick)
    report.say(f"done: tables and figures in {args.out}")
    return 0


def cmd_sample(args):
    report = Report(args.out, args.quiet)
    open(os.path.join(args.out, "summary.md"), "w").close()
    plt = _pyplot(args.no_plots)
    kw = {"alpha": args.alpha} if args.alpha is not None else {}
    if args.corrector:
        kw["corrector"] = "langevin"
    results, fresh = reverse_samplers(report, args.process, args.data, args.paths, args.steps, args.seed,
                                      args.dtype, methods=[(args.method, kw)])
    if plt is not None:
        (label, (x, dist)), = results.items()
        lo, hi, outside = _frame(x, fresh)
        title = (f"{args.process.upper()} {label}\n{args.steps} steps, {len(x):,} paths\n"
                 f"{_distance_text(dist, x.shape[1])}\n{_outside_text(outside, len(x))}")
        if x.shape[1] == 1:
            fig, ax = plt.subplots(figsize=(5, 4.2), layout="constrained")
            data = DATA[args.data]()
            edges = np.linspace(lo[0], hi[0], 121)
            ax.hist(fresh[:, 0], bins=edges, density=True, histtype="step", color="C2", label="data (fresh sample)")
            # density=True over the frame only: scale by the share inside so both
            # histograms estimate the same density
            inside = x[(x[:, 0] >= lo[0]) & (x[:, 0] <= hi[0]), 0]
            weights = np.full(inside.size, 1.0 / (len(x) * (edges[1] - edges[0])))
            ax.hist(inside, bins=edges, weights=weights, histtype="step", color="C0", label="sampler")
            grid = np.linspace(lo[0], hi[0], 400)
            ax.plot(grid, np.exp(data.logpdf(grid)), "k--", lw=0.8, label="exact data density")
            ax.set(xlabel="x", ylabel="density", xlim=(lo[0], hi[0]))
            ax.set_ylim(top=1.3 * ax.get_ylim()[1])  # headroom for the legend
            ax.legend(fontsize=8)
            ax.set_title(title, fontsize=9)
        else:
            means = getattr(DATA[args.data](), "means", None)
            fig, (a_data, ax) = plt.subplots(1, 2, figsize=(8.4, 4.6), sharex=True, sharey=True,
                                             layout="constrained")
            _scatter_panel(a_data, fresh, lo, hi, "data: a fresh sample\n(what the distance compares to)\n"
                           "x: mixture means" if means is not None else "data: a fresh sample",
                           means, n_show=5000, color="C2")
            _scatter_panel(ax, x, lo, hi, title, means, n_show=5000)
            for a in (a_data, ax):
                a.set(xlabel="x[0]")
            a_data.set(ylabel="x[1]")
            fig.suptitle("5,000 points drawn per panel", fontsize=9)
        report.figure(fig, f"sample_{args.process}_{args.method}")
    return 0


def converge_figure_title(args):
    """The setting of a converge run, as its table states it: the data, the
    time span (t_end for reverse runs) and the paths."""
    T = PROCESSES[args.process]().T
    span = (f"t = 0 to T = {T:g}" if args.direction == "forward" else
            f"exact score, T = {T:g} down to t_end = {args.t_end:g}")
    return (f"{args.kind} error of Euler-Maruyama, {args.direction} {args.process.upper()}, "
            f"{args.paths:,} paths\ndata {args.data}, {span}")


def cmd_converge(args):
    report = Report(args.out, args.quiet)
    open(os.path.join(args.out, "summary.md"), "w").close()
    plt = _pyplot(args.no_plots)
    study = em_convergence(report, args.process, args.kind, args.direction, args.paths, args.seed, args.data,
                           args.t_end)
    if plt is not None:
        fig, ax = plt.subplots(figsize=(5, 4))
        study.plot(ax=ax)
        ax.set_title(converge_figure_title(args), fontsize=9)
        report.figure(fig, f"{args.kind}_{args.direction}_{args.process}")
    return 0


def _parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", default="diffsde-tour", help="output folder (default ./diffsde-tour)")
    common.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    common.add_argument("--threads", type=int, default=None, help="threads (default: all available)")
    common.add_argument("--no-plots", action="store_true", help="tables only")
    common.add_argument("--quiet", action="store_true", help="no progress lines")

    parser = argparse.ArgumentParser(prog="python -m diffsde", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1], parents=[common])
    sub = parser.add_subparsers(dest="command")
    tour = sub.add_parser("tour", parents=[common], help="the whole tour (default)")
    for p in (parser, tour):
        p.add_argument("--paths", type=int, default=20_000, help="paths per sampler (default 20000)")
        p.add_argument("--steps", type=int, default=500, help="reverse steps (default 500)")
        p.add_argument("--coarse-steps", type=int, default=15,
                       help="a second, coarse step count for the sampler tables, where samplers differ "
                            "(default 15; 0 for none)")
        p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
        p.add_argument("--quick", action="store_true", help="fewer paths, for a smoke run")
    sample = sub.add_parser("sample", parents=[common], help="one reverse sampler against the exact data")
    sample.add_argument("--process", choices=sorted(PROCESSES), default="vp")
    sample.add_argument("--method", default="em", help="a reverse method: " + "; ".join(
        f"{name} ({', '.join(methods.available(make()))})" for name, make in sorted(PROCESSES.items())))
    sample.add_argument("--alpha", type=float, default=None, help="alpha of the em family")
    sample.add_argument("--corrector", action="store_true", help="add Langevin corrector steps")
    sample.add_argument("--data", choices=sorted(DATA), default="eight_gaussians")
    sample.add_argument("--steps", type=int, default=500)
    sample.add_argument("--paths", type=int, default=100_000)
    sample.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    converge = sub.add_parser("converge", parents=[common], help="strong or weak order of Euler-Maruyama")
    converge.add_argument("--process", choices=sorted(PROCESSES), default="vp")
    converge.add_argument("--kind", choices=("strong", "weak"), default="strong")
    converge.add_argument("--direction", choices=("forward", "reverse"), default="forward")
    converge.add_argument("--paths", type=int, default=4000)
    converge.add_argument("--data", choices=("bimodal_1d", "gaussian_1d"), default="bimodal_1d",
                          help="data: two modes (default) or one Gaussian (a linear score)")
    converge.add_argument("--t-end", type=float, default=0.01, help="reverse runs stop at t_end (default 0.01)")
    return parser


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    command = args.command or "tour"
    for name in ("paths", "steps"):
        value = getattr(args, name, None)
        if value is not None and value < 2:
            parser.error(f"--{name} must be at least 2; got {value}")
    if getattr(args, "coarse_steps", 0) < 0:
        parser.error(f"--coarse-steps must be 0 (none) or at least 1; got {args.coarse_steps}")
    try:
        if args.threads is not None:
            set_num_threads(args.threads)
        return {"tour": cmd_tour, "sample": cmd_sample, "converge": cmd_converge}[command](args)
    except (ValueError, TypeError) as exc:
        parser.exit(2, f"python -m diffsde {command}: error: {exc}\n")
    finally:
        if args.threads is not None:
            set_num_threads(None)


if __name__ == "__main__":
    raise SystemExit(main())
