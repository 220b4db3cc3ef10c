#!/usr/bin/env python
"""Benchmark of a run with a Python-callable score, 1 thread against 2.

Usage::

    python benchmarks/callback.py [--steps 1000] [--repeats 5] [--threaded-path]

Times ``ds.reverse(ds.DDPM.from_sde(ds.VPSDE(), steps), lambda x, t: -x, x0)``
with ``x0`` of shape ``(batch,)`` for several batch sizes, with
``ds.set_num_threads(1)`` and ``ds.set_num_threads(2)``, and prints per size
the median and the best of ``--repeats`` runs (``time.perf_counter``), the
ratio of the 2-thread median to the 1-thread median, and the process CPU time
per wall-clock second (``time.process_time``): about 1 when the waiting
threads sleep while the callback runs, about 2 when they spin.

The callback is called once per score evaluation with the whole batch, on the
calling thread. A run with a callback is serial below
``diffsde._engine.CALLBACK_SERIAL_BELOW`` state elements; ``--threaded-path``
sets that threshold to 0, so "2 threads" takes the threaded path at every
size (what the threshold was chosen from).

The issue this answers: a 1,000-step callback run on 10,000 rows took 0.12 s
at 4,000 rows but several seconds at 10,000 on a loaded 2-core machine, with
2 threads, because the threads waited for the callback at OpenMP barriers,
which spin. This file is a benchmark, never run by the tests.
"""
import argparse
import platform
import statistics
import subprocess
import time

import numpy as np

import diffsde as ds
from diffsde import _engine

BATCHES = (4_000, 10_000, 100_000, 1_000_000)


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def time_runs(chain, x0, repeats):
    walls, cpus = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        ds.reverse(chain, lambda x, t: -x, x0, rng=1)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return walls, sum(cpus) / sum(walls)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threaded-path", action="store_true",
                        help="use 2 threads for callback runs of any size")
    args = parser.parse_args()
    if args.threaded_path:
        _engine.CALLBACK_SERIAL_BELOW = 0
    chain = ds.DDPM.from_sde(ds.VPSDE(), args.steps)
    print(f"CPU: {cpu_model()} ({ds.set_num_threads(None)} threads available); "
          f"{args.steps} steps, {args.repeats} repeats; "
          f"callback runs serial below {_engine.CALLBACK_SERIAL_BELOW:,} elements")
    print(f"{'batch':>10} {'threads':>7} {'median s':>9} {'best s':>8} {'cpu/wall':>8} {'2/1':>6}")
    try:
        for batch in BATCHES:
            x0 = np.random.default_rng(0).standard_normal(batch)
            medians = {}
            for threads in (1, 2):
                ds.set_num_threads(threads)
                ds.reverse(chain, lambda x, t: -x, x0[:10], rng=1)  # warm up
                walls, load = time_runs(chain, x0, args.repeats)
                medians[threads] = statistics.median(walls)
                ratio = f"{medians[2] / medians[1]:6.2f}" if threads == 2 else ""
                print(f"{batch:>10,} {threads:>7} {medians[threads]:9.4f} {min(walls):8.4f} "
                      f"{load:8.2f} {ratio:>6}", flush=True)
    finally:
        ds.set_num_threads(None)


if __name__ == "__main__":
    main()
