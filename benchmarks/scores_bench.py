#!/usr/bin/env python
"""The built-in score kernels, timed: full against diagonal covariances, high
dimensions against d = 2, empirical data against the same score in NumPy on
matmul. A benchmark, never run by the tests; one thread unless --threads.

    python benchmarks/scores_bench.py [--quick] [--json PATH] [--baseline DIR]

Every case is timed as a user runs it (``ds.reverse`` with the VP SDE, or
``ds.run_steps`` with a table of score-only rows) and reported in ns per
path-step and per element-step. Each timing is the best of --repeat runs, in CPU time for one thread
(so that other work on a shared machine counts less), wall time otherwise.
With --baseline DIR the same cases are also run, in a subprocess of the same
invocation, against the diffsde built in DIR (an older checkout), so that
before and after come from one run on one machine.
"""
import argparse
import inspect
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

# The NumPy reference runs on one BLAS thread, in this process and in the
# --baseline subprocess alike. A BLAS reads these when NumPy loads it, so they
# must be set before the import (setting them later changes nothing, and a
# second BLAS thread's CPU time, spinning included, then counts against NumPy).
for _name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[_name] = "1"

import numpy as np  # noqa: E402


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit(tree):
    """The short commit checked out in tree, or None outside a git checkout."""
    try:
        return subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


#: CPU time of this process: on a shared machine it leaves out the time the
#: process waits for a core (wall time when more than one thread runs).
CLOCK = time.process_time


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        tic = CLOCK()
        fn()
        times.append(CLOCK() - tic)
    return min(times)


def eight_gaussians_as(ds, kind, d=2):
    """The eight-Gaussians mixture (d = 2), or 8 components on a ring of
    radius 2 in the first two coordinates with std 0.1 (d > 2), given with
    isotropic, diagonal or full covariance arrays of the same law."""
    K = 8
    angles = 2 * np.pi * np.arange(K) / K
    means = np.zeros((K, d))
    means[:, 0], means[:, 1] = 2 * np.cos(angles), 2 * np.sin(angles)
    var = 0.01
    if kind == "isotropic":
        covs = np.full(K, var)
    elif kind == "diagonal":
        covs = np.full((K, d), var)
    else:
        covs = np.stack([var * np.eye(d)] * K)
    return ds.GaussianMixture(np.full(K, 1 / K), means, covs)


def rotated_full(ds, d, seed=0):
    """8 components with random full covariances (not diagonal in any shared
    basis), and the diagonal mixture with their eigenvalues, for d = 8."""
    rng = np.random.default_rng(seed)
    K = 8
    means = 2 * rng.standard_normal((K, d))
    A = rng.standard_normal((K, d, d))
    covs = 0.05 * (A @ A.transpose(0, 2, 1) / d + 0.2 * np.eye(d))
    full = ds.GaussianMixture(np.full(K, 1 / K), means, covs)
    diag = ds.GaussianMixture(np.full(K, 1 / K), means, full.lambdas.copy())
    return full, diag


def reverse_case(ds, score, d, paths, steps, repeat):
    vp = ds.VPSDE()
    x_T = np.random.default_rng(0).standard_normal((paths, d))
    seconds = best_of(lambda: ds.reverse(vp, score, x_T, steps, rng=1), repeat)
    return {"paths": paths, "steps": steps, "d": d, "seconds": seconds,
            "ns_per_path_step": 1e9 * seconds / (paths * steps),
            "ns_per_element_step": 1e9 * seconds / (paths * steps * d)}


def score_only_case(ds, score, d, paths, steps, repeat):
    """x <- score(x) scaled: rows a = 1 - h, b = h, c = 0 (no noise), so only
    the score kernel and one axpy run."""
    h = 1.0 / steps
    t = 1.0 - h * np.arange(steps)
    vp = ds.VPSDE()
    m, s = (np.array(v, dtype=float) for v in zip(*(vp.marginal_coefficients(ti) for ti in t)))
    # the std column is named sd since the register-program tables, s before
    std = "sd" if "sd" in inspect.signature(ds.StepTable.affine).parameters else "s"
    table = ds.StepTable.affine(1 - h, h, 0.0, t=t, m=m, **{std: s})
    x = 0.1 * np.random.default_rng(0).standard_normal((paths, d))
    seconds = best_of(lambda: ds.run_steps(x, table, score=score), repeat)
    return {"paths": paths, "steps": steps, "d": d, "seconds": seconds,
            "ns_per_path_step": 1e9 * seconds / (paths * steps),
            "ns_per_element_step": 1e9 * seconds / (paths * steps * d)}


def numpy_empirical_score(points, x, m, s):
    """The empirical score with matmul: logits from |x|^2 - 2 m x.y + m^2 |y|^2,
    a stable softmax, then a weighted sum of the points (one BLAS call each)."""
    sq_y = np.einsum("ij,ij->i", points, points)
    sq_x = np.einsum("ij,ij->i", x, x)
    logits = -(sq_x[:, None] - 2 * m * (x @ points.T) + (m * m) * sq_y[None]) / (2 * s * s)
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    return (m * (logits @ points) - x) / (s * s)


def empirical_case(ds, d, n_points, paths, steps, repeat):
    rng = np.random.default_rng(3)
    data = ds.EmpiricalData(rng.standard_normal((n_points, d)))
    vp = ds.VPSDE()
    x_T = rng.standard_normal((paths, d))
    ours = best_of(lambda: ds.reverse(vp, data, x_T, steps, rng=1), repeat)

    def numpy_score(x, t):
        m, s = vp.marginal_coefficients(t)
        return numpy_empirical_score(data.points, x, float(m), float(s))

    theirs = best_of(lambda: ds.reverse(vp, numpy_score, x_T, steps, rng=1), repeat)
    return {"d": d, "n_points": n_points, "paths": paths, "steps": steps,
            "fused_seconds": ours, "numpy_matmul_seconds": theirs,
            "speedup_over_numpy": theirs / ours}


def measure(quick, repeat, threads):
    import diffsde as ds

    global CLOCK
    CLOCK = time.process_time if threads == 1 else time.perf_counter
    ds.set_num_threads(threads)
    out = {}
    paths, steps = (20_000, 40) if quick else (50_000, 40)
    for kind in ("isotropic", "diagonal", "full"):
        out[f"eight_gaussians_{kind}_d2"] = reverse_case(ds, eight_gaussians_as(ds, kind), 2, paths, steps, repeat)
    full8, diag8 = rotated_full(ds, 8)
    out["random_full_d8"] = reverse_case(ds, full8, 8, paths // 4, steps, repeat)
    out["random_diagonal_d8"] = reverse_case(ds, diag8, 8, paths // 4, steps, repeat)
    # high dimension: the same isotropic ring mixture, score-only rows
    for d, p in ((2, 65_536), (65_536, 4) if quick else (65_536, 16)):
        out[f"isotropic_score_d{d}"] = score_only_case(ds, eight_gaussians_as(ds, "isotropic", d), d, p, 20, repeat)
    for d in (16, 64):
        n, p, st = (500, 500, 10) if quick else (2_000, 2_000, 10)
        out[f"empirical_d{d}"] = empirical_case(ds, d, n, p, st, repeat)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--baseline", type=Path, help="a checkout with an older diffsde built in place")
    parser.add_argument("--raw", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    if args.raw:  # the subprocess of --baseline: print the measurements only
        print(json.dumps(measure(args.quick, args.repeat, args.threads)))
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    runs = {"after": measure(args.quick, args.repeat, args.threads)}
    if args.baseline is not None:
        env = dict(os.environ, PYTHONPATH=str(args.baseline.resolve()))
        cmd = [sys.executable, __file__, "--raw", "--repeat", str(args.repeat), "--threads", str(args.threads)]
        text = subprocess.run(cmd + (["--quick"] if args.quick else []), env=env, check=True,
                              capture_output=True, text=True).stdout
        runs["before"] = json.loads(text)
    report = {"cpu": cpu_model(), "threads": args.threads, "quick": args.quick, "runs": runs,
              "git_commit": git_commit(Path(__file__).resolve().parent),
              "baseline_commit": None if args.baseline is None else git_commit(args.baseline)}
    print(f"CPU: {report['cpu']}, {args.threads} thread(s)")
    for label, res in runs.items():
        print(f"[{label}]")
        for name, r in res.items():
            if "ns_per_path_step" in r:
                print(f"  {name:28s} {r['ns_per_path_step']:10.1f} ns/path-step {r['ns_per_element_step']:8.2f} ns/element-step")
            else:
                print(f"  {name:28s} fused {r['fused_seconds']:.3f} s, NumPy matmul {r['numpy_matmul_seconds']:.3f} s,"
                      f" speed-up {r['speedup_over_numpy']:.2f}x")
        g = res
        print(f"  full / diagonal, d = 2: {g['eight_gaussians_full_d2']['seconds'] / g['eight_gaussians_diagonal_d2']['seconds']:.2f}x;"
              f" d = 8: {g['random_full_d8']['seconds'] / g['random_diagonal_d8']['seconds']:.2f}x")
        print(f"  per element-step, d = 65536 / d = 2: "
              f"{g['isotropic_score_d65536']['ns_per_element_step'] / g['isotropic_score_d2']['ns_per_element_step']:.2f}x")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
