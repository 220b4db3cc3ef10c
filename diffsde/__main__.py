"""python -m diffsde: the tour and its pieces.

    python -m diffsde [tour]   convergence of DDPM -> VP and SMLD -> VE, and every
                               reverse sampler on a 2-D mixture; figures and tables
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

import numpy as np

from . import (DDPM, SMLD, VESDE, VPSDE, SubVPSDE, analysis, datasets, forward, reverse,
               set_num_threads)

PROCESSES = {"vp": lambda: VPSDE(0.1, 20.0), "ve": lambda: VESDE(0.01, 10.0), "subvp": lambda: SubVPSDE(0.1, 20.0)}
DATA = {"eight_gaussians": datasets.eight_gaussians, "bimodal_1d": datasets.bimodal_1d}
SAMPLERS = {
    "vp": [("em", {}), ("em", {"alpha": 0.0}), ("em", {"alpha": 2.0}), ("ode_heun", {}),
           ("reverse_diffusion", {}), ("ancestral", {}), ("ancestral", {"variance": "posterior"}),
           ("ddim", {}), ("ddim", {"eta": 1.0})],
    "ve": [("em", {}), ("em", {"alpha": 0.0}), ("ode_heun", {}), ("reverse_diffusion", {}), ("ancestral", {})],
}


class Report:
    """Progress lines on stderr and the tables written at the end."""

    def __init__(self, out, quiet=False):
        self.out, self.quiet, self.start = out, quiet, time.perf_counter()
        os.makedirs(out, exist_ok=True)

    def say(self, message):
        if not self.quiet:
            print(f"[{time.perf_counter() - self.start:5.1f} s] {message}", file=sys.stderr, flush=True)

    def table(self, name, header, rows, title):
        path_csv = os.path.join(self.out, f"{name}.csv")
        with open(path_csv, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows)
        lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
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


# ---- figures ----------------------------------------------------------------------

#: projections of the sliced W2 that reverse_samplers reports in 2-D (and the figures name)
SLICED_PROJECTIONS = 64


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
    name = "W1" if d == 1 else f"sliced W2 ({SLICED_PROJECTIONS} proj.)" if projections else "sliced W2"
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
        outside = _frame_count(x, lo, hi)
        if outside:
            title += f"\n{_outside_text(outside, len(x))}"
        _scatter_panel(a, x, lo, hi, title, means)
    for k, a in enumerate(flat[panels:], start=panels):
        a.axis("off")
        flat[k - cols].xaxis.set_tick_params(labelbottom=True)  # nothing below it carries the labels
    fig.suptitle(f"reverse samplers on {process.upper()}: {paths:,} paths, {steps} steps, exact score; "
                 f"x: mixture means, 3,000 points per panel\n"
                 f"distance: sliced W2 ({SLICED_PROJECTIONS} random projections) to a fresh data sample\n"
                 f"floor: the same distance between two samples of one law", fontsize=10)
    return fig


# ---- pieces ---------------------------------------------------------------------

def chain_convergence(report, paths, seed):
    """RMS over paths of chain - SDE (EM, same draws) against N, for DDPM/VP and SMLD/VE."""
    x0 = datasets.bimodal_1d().sample(paths, rng=seed)
    ladder = np.array([32, 64, 128, 256, 512, 1024])
    rows, curves = [], {}
    for name, sde, make in (("DDPM -> VP", VPSDE(0.1, 20.0), DDPM.from_sde),
                            ("SMLD -> VE", VESDE(0.01, 10.0), SMLD.from_sde)):
        rms = []
        for n in ladder:
            diff = forward(make(sde, int(n)), x0, rng=seed + 1).x - forward(sde, x0, steps=int(n), rng=seed + 1).x
            rms.append(float(np.sqrt(np.mean(diff**2))))
        fit = analysis.fit_order(ladder, rms)
        curves[name] = (ladder, np.array(rms), fit)
        rows.append([name, _fmt(rms[0]), _fmt(rms[-1]), f"{fit.order:.3f}", f"[{fit.ci[0]:.3f}, {fit.ci[1]:.3f}]"])
        report.say(f"{name}: order {fit.order:.3f}")
    report.table("chain_convergence", ["pair", "rms N=32", "rms N=1024", "order", "95% CI"], rows,
                 f"A chain and its SDE limit on the same draws: RMS path difference at t = T ({paths:,} paths)")
    return curves


def em_convergence(report, process, kind, direction, paths, seed):
    """Strong or weak order of EM on one Brownian path."""
    sde = PROCESSES[process]()
    data = datasets.bimodal_1d()
    fn = analysis.strong_error if kind == "strong" else analysis.weak_error
    ladder = [32, 64, 128, 256, 512]
    if direction == "forward":
        study = fn(sde, data.sample(paths, rng=seed), ladder, rng=seed + 1)
    else:
        x_T = data.marginal(sde, sde.T).sample(paths, rng=seed)
        study = fn(sde, x_T, ladder, score=data.score(sde), direction="reverse", t_end=0.01, rng=seed + 1)
    rows = [[int(n), _fmt(e), _fmt(s)] for n, e, s in zip(study.steps, study.errors, study.stderr)]
    rows.append(["order", f"{study.fit.order:.3f}", f"CI [{study.fit.ci[0]:.3f}, {study.fit.ci[1]:.3f}]"])
    report.table(f"{kind}_{direction}_{process}", ["N", f"{kind} error", "std err"], rows,
                 f"{kind.capitalize()} error of Euler-Maruyama, {direction} {process.upper()} "
                 f"(reference {study.reference_steps} steps on the same path)")
    return study


def reverse_samplers(report, process, data_name, paths, steps, seed, dtype, methods=None):
    """Every reverse sampler from the exact marginal at T with the exact score."""
    sde = PROCESSES[process]()
    data = DATA[data_name]()
    x_T = data.marginal(sde, sde.T).sample(paths, rng=seed).astype(dtype)
    fresh = data.sample(paths, rng=seed + 1)
    if data.d == 1:
        fresh, x_T = fresh[:, None], x_T
    rows, results = [], {}
    for method, kw in methods or SAMPLERS.get(process, [("em", {}), ("em", {"alpha": 0.0}), ("ode_heun", {})]):
        label = method + "".join(f", {k}={v}" for k, v in kw.items())
        tic = time.perf_counter()
        tr = reverse(sde, data, x_T, steps, method=method, rng=seed + 2, **kw)
        seconds = time.perf_counter() - tic
        x = np.asarray(tr.x, dtype=np.float64).reshape(paths, -1)
        dist = analysis.sliced_wasserstein(x, fresh, n_projections=SLICED_PROJECTIONS, rng=seed) if data.d > 1 else \
            analysis.wasserstein_1d(x[:, 0], fresh[:, 0], rng=seed)
        mean_error = float(np.max(np.abs(x.mean(axis=0) - data.weights @ data.means)))
        results[label] = (x, dist)
        rows.append([label, _fmt(dist.value, 3), _fmt(dist.floor, 3), _fmt(mean_error, 3), tr.nfe, f"{seconds:.2f}"])
        report.say(f"{process} {label}: distance {dist.value:.3g} (floor {dist.floor:.3g})")
    report.table(f"samplers_{process}", ["method", "W2 to data", "noise floor", "max abs mean error", "nfe", "seconds"],
                 rows, f"Reverse samplers on {process.upper()}, {data_name}, {paths:,} paths, {steps} steps, "
                       f"exact score, from the exact marginal at T")
    return results, fresh


# ---- subcommands ------------------------------------------------------------------

def cmd_tour(args):
    report = Report(args.out, args.quiet)
    open(os.path.join(args.out, "summary.md"), "w").close()
    plt = _pyplot(args.no_plots)
    paths = 2000 if args.quick else args.paths
    report.say("1/3 chains and their SDE limits")
    curves = chain_convergence(report, min(paths, 4000), args.seed)
    report.say("2/3 strong order of Euler-Maruyama on one Brownian path")
    study = em_convergence(report, "vp", "strong", "forward", min(paths, 4000), args.seed)
    report.say("3/3 reverse samplers on eight Gaussians")
    samples = {}
    for process in ("vp", "ve"):
        samples[process] = reverse_samplers(report, process, "eight_gaussians", paths, args.steps, args.seed, args.dtype)
    if plt is not None:
        from .plot import log_ticks

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


def cmd_converge(args):
    report = Report(args.out, args.quiet)
    open(os.path.join(args.out, "summary.md"), "w").close()
    plt = _pyplot(args.no_plots)
    study = em_convergence(report, args.process, args.kind, args.direction, args.paths, args.seed)
    if plt is not None:
        fig, ax = plt.subplots(figsize=(5, 4))
        study.plot(ax=ax)
        ax.set_title(f"{args.kind} error, {args.direction} {args.process.upper()}")
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
        p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
        p.add_argument("--quick", action="store_true", help="fewer paths, for a smoke run")
    sample = sub.add_parser("sample", parents=[common], help="one reverse sampler against the exact data")
    sample.add_argument("--process", choices=sorted(PROCESSES), default="vp")
    sample.add_argument("--method", default="em", help="em, ode_heun, reverse_diffusion, ancestral, ddim")
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
    return parser


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    command = args.command or "tour"
    for name in ("paths", "steps"):
        value = getattr(args, name, None)
        if value is not None and value < 2:
            parser.error(f"--{name} must be at least 2; got {value}")
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
