#!/usr/bin/env python
"""Paths per second on dask: in memory (1 and 2 threads) against a 2-worker
LocalCluster, and a scaling model for more machines.

Usage::

    python benchmarks/dask_bench.py [--forward-paths N] [--reverse-paths N]
                                    [--chunk ROWS] [--repeat R] [--json]

Workloads (100 steps, float64, best of ``--repeat`` runs):

* forward VP Euler-Maruyama, d = 1, from x0 = 0
  (``ds.forward(vp, x0, steps=100, rng=1)``);
* reverse VP Euler-Maruyama with the exact eight-Gaussians score, d = 2, prior
  drawn from ``shape`` (``ds.reverse(vp, eight_gaussians(), shape=..., steps=100)``).

Each is timed with its result reduced to its mean and variance per coordinate
(what a large study keeps), in memory with ``ds.set_num_threads(1)`` and 2,
and on a ``distributed.LocalCluster(n_workers=2, threads_per_worker=1)`` whose
workers run diffsde with one thread each, in blocks of ``--chunk`` rows (the
start state lazily ``da.zeros``, the prior drawn per block). The cluster's
mean and variance are checked equal to the in-memory ones to rounding of the
reduction order (the states themselves are equal bit for bit: tests/test_dask.py).

The scaling model: one block of B rows costs ``a + b B`` seconds on a worker
(``a``, ``b`` fitted from in-process block runs at four sizes) and the central
scheduler spends ``o`` seconds per task (measured from a cluster run of many
one-row blocks, whose compute is negligible), plus a fixed ``T0`` per compute
(a one-task graph). A run of N paths in blocks of B on W workers takes about

    T(W) = T0 + max(ceil(N / B / W) (a + b B), (N / B) o)

(workers compute while the scheduler hands out tasks; whichever is slower
bounds the run). The script prints T and N / T for W = 2 (against the
measurement), 10 and 100 at N = 10^8 and 10^9.

The default sizes (10^7 forward paths, 2 x 10^6 reverse paths) run in a few
minutes on 2 shared cores; the issue's 10^8 paths is ``--forward-paths 1e8``.
``--json`` writes ``benchmarks/results/dask-<date>.json``. This file is a
benchmark, never run by the tests.
"""
import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the in-place build of the repository
# the worker processes import diffsde from the same tree
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

import dask  # noqa: E402
import dask.array as da  # noqa: E402
import distributed  # noqa: E402

import diffsde as ds  # noqa: E402

STEPS = 100
VP = ds.VPSDE()
MIX = ds.datasets.eight_gaussians()


def run_numpy(kind, n):
    if kind == "forward":
        tr = ds.forward(VP, np.zeros((n, 1)), steps=STEPS, rng=1, save_at=[STEPS])
    else:
        tr = ds.reverse(VP, MIX, shape=(n, 2), steps=STEPS, rng=1, save_at=[0])
    return tr.x.mean(axis=0), tr.x.var(axis=0)


def run_lazy(kind, n, chunk):
    if kind == "forward":
        tr = ds.forward(VP, da.zeros((n, 1), chunks=(chunk, 1)), steps=STEPS, rng=1, save_at=[STEPS])
    else:
        tr = ds.reverse(VP, MIX, shape=(n, 2), chunks=chunk, steps=STEPS, rng=1, save_at=[0])
    return tr.x.mean(axis=0), tr.x.var(axis=0)


def best(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def block_cost(kind, chunk, repeat):
    """(a, b): seconds per block = a + b rows, 1 thread, in this process
    (least squares over blocks of B/8, B/4, B/2 and B rows)."""
    ds.set_num_threads(1)
    rows = np.array([max(chunk // k, 1) for k in (8, 4, 2, 1)])
    times = np.array([best(lambda: run_numpy(kind, int(n)), repeat)[0] for n in rows])
    b, a = np.polyfit(rows, times, 1)
    ds.set_num_threads(None)
    return max(a, 0.0), b


def scheduler_cost(client, n_tasks=400):
    """(T0, o): a one-task compute, and the scheduler's seconds per task."""
    one = da.zeros((1, 1), chunks=1)
    t0, _ = best(lambda: ds.forward(VP, one, steps=1, rng=1).x.sum().compute(scheduler=client), 3)
    many = da.zeros((n_tasks, 1), chunks=(1, 1))
    t_many, _ = best(lambda: ds.forward(VP, many, steps=1, rng=1).x.sum().compute(scheduler=client), 3)
    return t0, max(t_many - t0, 0.0) / n_tasks


def model(n, chunk, workers, a, b, t0, o):
    blocks = math.ceil(n / chunk)
    return t0 + max(math.ceil(blocks / workers) * (a + b * chunk), blocks * o)


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except Exception:
        return platform.processor() or "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--forward-paths", type=float, default=1e7)
    parser.add_argument("--reverse-paths", type=float, default=2e6)
    parser.add_argument("--chunk", type=float, default=1e6, help="rows per block on the cluster")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    chunk = int(args.chunk)
    sizes = {"forward": int(args.forward_paths), "reverse": int(args.reverse_paths)}
    report = {"cpu": cpu_model(), "cores": os.cpu_count(), "load_before": os.getloadavg(),
              "steps": STEPS, "chunk": chunk, "runs": {}}
    print(f"CPU: {report['cpu']}, {report['cores']} cores, load average {report['load_before'][0]:.1f}")

    results = {}
    for kind, n in sizes.items():
        for threads in (1, 2):
            ds.set_num_threads(threads)
            t, moments = best(lambda: run_numpy(kind, n), args.repeat)
            results[kind, f"memory, {threads} thread{'s' * (threads > 1)}"] = (t, moments)
    ds.set_num_threads(None)

    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    with distributed.Client(cluster) as client:
        client.run(ds.set_num_threads, 1)
        for kind, n in sizes.items():
            t, moments = best(lambda: dask.compute(*run_lazy(kind, n, chunk)), args.repeat)
            results[kind, "LocalCluster, 2 workers"] = (t, moments)
        t0, o = scheduler_cost(client)
    cluster.close()

    print(f"\n{STEPS} steps, float64; cluster blocks of {chunk:,} rows\n")
    print(f"{'workload':<42} {'paths':>12} {'seconds':>9} {'paths/s':>12}")
    for (kind, where), (t, moments) in results.items():
        n = sizes[kind]
        name = f"{'forward EM, d = 1' if kind == 'forward' else 'reverse EM, 8 Gaussians, d = 2'}: {where}"
        print(f"{name:<42} {n:>12,} {t:>9.2f} {n / t:>12.3g}")
        report["runs"][f"{kind} / {where}"] = {"paths": n, "seconds": t, "paths_per_second": n / t}
        ref = results[kind, "memory, 1 thread"][1]
        np.testing.assert_allclose(np.ravel(moments), np.ravel(ref), rtol=1e-9, atol=1e-12)

    print(f"\nscheduler: T0 = {t0 * 1e3:.1f} ms per compute, o = {o * 1e3:.2f} ms per task")
    report["scheduler"] = {"T0": t0, "per_task": o}
    report["model"] = {}
    for kind, n in sizes.items():
        a, b = block_cost(kind, chunk, args.repeat)
        report["model"][kind] = {"a": a, "b": b}
        measured = results[kind, "LocalCluster, 2 workers"][0]
        print(f"\n{kind}: block of B rows = {a * 1e3:.2f} ms + {b * 1e9:.0f} ns x B; "
              f"model at W = 2: {model(n, chunk, 2, a, b, t0, o):.2f} s (measured {measured:.2f} s)")
        for big in (10**8, 10**9):
            for workers in (10, 100):
                for block in (chunk, 10 * chunk):
                    t = model(big, block, workers, a, b, t0, o)
                    report["model"][kind][f"N={big:.0e} W={workers} B={block:.0e}"] = t
                    print(f"  N = {big:.0e}, W = {workers:>3}, B = {block:.0e}: {t:8.2f} s, "
                          f"{big / t:.3g} paths/s")
    report["load_after"] = os.getloadavg()
    if args.json:
        path = ROOT / "benchmarks" / "results" / f"dask-{datetime.date.today()}.json"
        path.write_text(json.dumps(report, indent=1))
        print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
