#!/usr/bin/env python
"""Benchmark of the fixed costs of small runs: per call, per step, per table.

Usage::

    python benchmarks/small_runs.py [--quick] [--json] [--against DIR]

Everything runs on one thread (``ds.set_num_threads(1)``), float64, and is
timed as the fastest of many single calls (``time.perf_counter``), the cases taken
round-robin (3 rounds in each of several fresh processes, the trees
alternating) so that a slow spell of a shared machine hits them alike:

* per call: ``ds.forward`` (VP, Euler-Maruyama) and ``ds.reverse`` (VP,
  reverse EM with a built-in ``LinearScore``) on 10 paths x 10 steps, and
  ``ds.reverse`` on 10 paths x 4 steps;
* per step: the same calls on 10 paths x 10, 100 and 1000 steps; a
  least-squares line through the three times gives the fixed cost per call
  (intercept) and per step (slope);
* 10^3 paths x 10^3 steps against its element work: the whole call, and the
  C run alone (``diffsde._engine.execute`` of a prepared plan: the normals
  and the arithmetic), so ``call / C run`` is the overhead factor;
* the step table's build cost: ``StepTable.affine`` on 4 steps (a, b, c),
  ``StepTable.heun`` on 4 steps, and a 10^6-step Euler-Maruyama table
  (``StepTable.affine(a, 0.0, c, t=t)``).

``--against DIR`` runs the same cases, in the same run and interleaved with
this tree's, on another checkout of diffsde (its extension built in place),
e.g. the commit before a change: the JSON then holds both columns and their
ratios. ``--json`` writes ``benchmarks/results/small-runs-<date>.json``
(``-quick`` with ``--quick``). The CPU model is read from /proc/cpuinfo.
This file is a benchmark, never run by the tests.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ---- the worker: runs in a process importing one tree's diffsde -------------

def _cases(quick):
    import numpy as np

    import diffsde as ds
    from diffsde import _engine

    ds.set_num_threads(1)
    vp = ds.VPSDE()
    score = ds.LinearScore(0.0, 1.0)
    cases = {}

    def fwd(batch, steps):
        x0 = np.zeros((batch, 1))
        return lambda: ds.forward(vp, x0, steps=steps, rng=0)

    def rev(batch, steps):
        return lambda: ds.reverse(vp, score, shape=(batch, 1), steps=steps, rng=0)

    cases["forward 10x10"] = fwd(10, 10)
    cases["reverse 10x10"] = rev(10, 10)
    cases["reverse 10x4"] = rev(10, 4)
    for steps in (100, 1000):
        cases[f"forward 10x{steps}"] = fwd(10, steps)
        cases[f"reverse 10x{steps}"] = rev(10, steps)
    big = 300 if quick else 1000
    cases[f"forward {big}x{big}"] = fwd(big, big)
    cases[f"reverse {big}x{big}"] = rev(big, big)
    # the C run alone of the same two runs (checkouts before the method
    # registry and the prepared plans have no way to time it apart)
    if hasattr(_engine, "prepare") and hasattr(getattr(ds, "methods", None), "table"):
        cases[f"forward {big}x{big} C run"] = _c_run(ds, _engine, np, vp, None, big, "forward")
        cases[f"reverse {big}x{big} C run"] = _c_run(ds, _engine, np, vp, score, big, "reverse")

    a4, b4, c4, t4 = [0.99] * 4, [0.01] * 4, [0.1] * 4, [1.0, 0.75, 0.5, 0.25]
    cases["StepTable.affine 4 steps"] = lambda: ds.StepTable.affine(a4, b4, c4, t=t4)
    cases["StepTable.heun 4 steps"] = lambda: ds.StepTable.heun(a4, b4, a4, b4, t=t4, t_end=t4)
    n = 10**5 if quick else 10**6
    a, c, t = np.full(n, 0.999), np.full(n, 0.01), np.linspace(0, 1, n)
    cases[f"StepTable.affine EM {n} steps"] = lambda: ds.StepTable.affine(a, 0.0, c, t=t)
    return cases


def _c_run(ds, _engine, np, vp, score, big, direction):
    """The C run of the call's own table (``ds.methods.table`` builds it the
    way forward/reverse do), prepared once."""
    table = ds.methods.table(vp, "em", big, direction=direction)
    x = np.zeros((big, 1)) if direction == "forward" else np.random.default_rng(0).standard_normal((big, 1))
    plan = _engine.prepare(x, table, score=score, save=[0, table.n_steps])
    return lambda: _engine.execute(plan, 1)


def worker(quick, rounds):
    cases = _cases(quick)
    best = {name: float("inf") for name in cases}
    # calibrate: enough calls per sample for ~20 ms
    reps = {}
    for name, f in cases.items():
        f()
        t0 = time.perf_counter()
        f()
        once = max(time.perf_counter() - t0, 1e-7)
        reps[name] = max(1, min(2000, int(0.02 / once)))
    # each call timed alone: on a shared machine the fastest single call is
    # the one no other process interrupted
    clock = time.perf_counter
    for _ in range(rounds):
        for name, f in cases.items():
            fastest = best[name]
            for _ in range(reps[name]):
                t0 = clock()
                f()
                fastest = min(fastest, clock() - t0)
            best[name] = fastest
    return best


# ---- the driver ---------------------------------------------------------------

def _run_tree(tree, quick, rounds):
    env = dict(os.environ, PYTHONPATH=tree, DIFFSDE_NUM_THREADS="1", OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker"]
                         + (["--quick"] if quick else []) + ["--rounds", str(rounds)],
                         capture_output=True, text=True, env=env, check=True, cwd="/")
    return json.loads(out.stdout)


def _commit(tree):
    try:
        return subprocess.run(["git", "-C", tree, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _dirty(tree):
    """Does the checkout differ from its commit (None: not a git checkout)?"""
    try:
        out = subprocess.run(["git", "-C", tree, "status", "--porcelain", "--untracked-files=no"],
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return bool(out.strip())


def _fit(times, steps):
    """Least-squares line time = per_call + per_step * steps."""
    n = len(steps)
    mx, my = sum(steps) / n, sum(times) / n
    slope = sum((s - mx) * (t - my) for s, t in zip(steps, times)) / sum((s - mx) ** 2 for s in steps)
    return my - slope * mx, slope


def _summary(best, quick):
    big = 300 if quick else 1000
    out = {}
    for kind in ("forward", "reverse"):
        steps = [10, 100, 1000]
        per_call, per_step = _fit([best[f"{kind} 10x{s}"] for s in steps], steps)
        out[f"{kind} fixed per call (us)"] = per_call * 1e6
        out[f"{kind} per step at 10 paths (us)"] = per_step * 1e6
        c_run = best.get(f"{kind} {big}x{big} C run")
        out[f"{kind} {big}x{big}: call / C run"] = best[f"{kind} {big}x{big}"] / c_run if c_run else None
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--against", metavar="DIR", help="another diffsde checkout to time in the same run")
    ap.add_argument("--against-commit", metavar="REV",
                    help="the commit DIR was exported from, for the JSON when DIR is not a git checkout")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    rounds = args.rounds or (2 if args.quick else 5)
    if args.worker:
        json.dump(worker(args.quick, rounds), sys.stdout)
        return

    trees = {"this": ROOT}
    if args.against:
        trees["against"] = os.path.abspath(args.against)
    load_start = os.getloadavg()
    # alternate the trees round by round, so both see the same machine
    best = {label: None for label in trees}
    for _ in range(rounds):
        for label, tree in trees.items():
            got = _run_tree(tree, args.quick, 3)
            best[label] = got if best[label] is None else {k: min(v, got[k]) for k, v in best[label].items()}
    result = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": {"cpu": cpu_model(), "cpus_usable": len(os.sched_getaffinity(0)),
                    "platform": platform.platform(), "python": platform.python_version(),
                    "threads": 1, "loadavg_start": load_start, "loadavg_end": os.getloadavg()},
        "trees": {label: {"path": tree, "commit": _commit(tree) or (args.against_commit if label == "against" else None),
                          "dirty": _dirty(tree)}
                  for label, tree in trees.items()},
        "seconds": best,
        "summary": {label: _summary(b, args.quick) for label, b in best.items()},
    }
    print(f"CPU: {result['machine']['cpu']}, 1 thread, float64; best of {rounds} rounds")
    labels = list(trees)
    head = f"{'case':<36}" + "".join(f"{label + ' (us)':>16}" for label in labels)
    if len(labels) == 2:
        head += f"{'against/this':>14}"
    print(head)
    for name in best["this"]:
        got = [best[label].get(name) for label in labels]
        row = f"{name:<36}" + "".join(f"{v * 1e6:>16.1f}" if v else f"{'-':>16}" for v in got)
        if len(labels) == 2 and all(got):
            row += f"{got[1] / got[0]:>14.2f}"
        print(row)
    for name in result["summary"]["this"]:
        got = [result["summary"][label][name] for label in labels]
        row = f"{name:<36}" + "".join(f"{v:>16.2f}" if v is not None else f"{'-':>16}" for v in got)
        print(row)
    if args.json:
        day = datetime.date.today().isoformat()
        path = os.path.join(HERE, "results", f"small-runs-{day}{'-quick' if args.quick else ''}.json")
        with open(path, "w") as f:
            json.dump(result, f, indent=1)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
