#!/usr/bin/env python
"""What ``progress=True`` and a step ``callback`` cost a reverse run.

Usage::

    python benchmarks/overhead.py [--repeats 7] [--quick] [--json] [--only {progress,callback}]
                                  [--clock {wall,cpu}]

Progress: ``ds.reverse(vp, eight_gaussians, shape=(n, 2), steps, rng=0)``
(reverse EM, the built-in mixture score, the default thread count) with and
without ``progress=True`` (tqdm when installed, output sent to /dev/null), for
runs of about 0.1, 0.5 and 2 seconds (on an idle 2-core AMD EPYC), and the same with the fixed cutting of
earlier releases (100 equal chunks, ``--legacy`` column), all timed
round-robin in one process: best and median of ``--repeats``.

Callback: the same run with ``callback=lambda info: None`` against none,
with the built-in score and with a real torch network
(``ds.network_score(ds.training.mlp(2), vp, prediction="eps")``, float32,
one torch thread) at batch 256 and 4096, one diffsde thread for both:
microseconds per step that the callback path adds beyond the run without it
(the network included in both), and each run's time per step beyond the bare
network called ``steps`` times on a tensor made once. For the torch network
the same pair runs again with the state passed as a float64 torch tensor
(``tensor with``/``tensor without``): the callback then gets tensors on the
run's memory and the results come back as tensors. Last, that conversion
alone (torch: two tensors on the run's buffers; JAX: two copies), timed with
``timeit`` on one step's arrays.

``--json`` writes everything, with the CPU model (lscpu), to
``benchmarks/results/overhead-<date>.json`` (``overhead-<part>-<date>.json``
with ``--only``). This file is a benchmark,
never run by the tests.
"""
import argparse
import contextlib
import datetime
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the in-place build of the repository

import diffsde as ds  # noqa: E402
from diffsde import _engine  # noqa: E402


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def legacy_progress(table, run_chunk, threads, bar, stop_on_nonfinite):
    """The cutting of earlier releases: about 100 equal chunks of steps."""
    cuts = np.unique(np.linspace(0, table.n_steps, min(table.n_steps, 100) + 1).astype(np.int64))
    free = _engine._free_cuts(table)
    cuts = np.unique(np.r_[0, free[np.searchsorted(free, cuts[1:])]])
    bad_row = -1
    for s0, s1 in zip(cuts[:-1], cuts[1:]):
        bad = run_chunk(int(s0), int(s1), threads)
        bar.update(int(s1 - s0))
        if bad >= 0:
            bad_row = bad if bad_row < 0 else bad_row
            if stop_on_nonfinite:
                break
    return bad_row


#: The clock of every timing: wall time, or with ``--clock cpu`` the
#: process's CPU time (``time.process_time``), which a loaded machine
#: inflates far less than wall time for one-thread runs (the callback part).
CLOCK = time.perf_counter


def round_robin(cases, repeats):
    """{name: [seconds]} timing each case once per round."""
    times = {name: [] for name in cases}
    with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
        for fn in cases.values():
            fn()  # warm up (tqdm's import, caches)
        for _ in range(repeats):
            for name, fn in cases.items():
                start = CLOCK()
                fn()
                times[name].append(CLOCK() - start)
    return times


def summary(ts):
    return {"median": statistics.median(ts), "best": min(ts), "all": ts}


def progress_part(repeats, quick):
    vp = ds.VPSDE()
    mix = ds.datasets.eight_gaussians()
    rows = []
    sizes = [(40_000, 100), (20_000, 500)] if quick else [(40_000, 100), (20_000, 500), (80_000, 500)]
    original = _engine._run_with_progress
    for n, steps in sizes:
        run = lambda progress: ds.reverse(vp, mix, shape=(n, 2), steps=steps, rng=0,  # noqa: E731
                                          progress=progress)

        def legacy():
            _engine._run_with_progress = legacy_progress
            try:
                run(True)
            finally:
                _engine._run_with_progress = original

        t = round_robin({"plain": lambda: run(False), "progress": lambda: run(True), "legacy": legacy},
                        repeats)
        row = {"batch": n, "steps": steps, **{k: summary(v) for k, v in t.items()}}
        for stat in ("median", "best"):
            base = row["plain"][stat]
            row[f"overhead_{stat}"] = row["progress"][stat] / base - 1
            row[f"legacy_overhead_{stat}"] = row["legacy"][stat] / base - 1
        rows.append(row)
        print(f"progress  n={n:>6} steps={steps:>4}  plain {row['plain']['median']:.3f} s  progress "
              f"{row['progress']['median']:.3f} s ({row['overhead_median']:+.1%}; best of "
              f"{repeats} {row['overhead_best']:+.1%})  legacy 100 chunks {row['legacy']['median']:.3f} s "
              f"({row['legacy_overhead_median']:+.1%}; best {row['legacy_overhead_best']:+.1%})")
    return rows


def callback_part(repeats, quick):
    vp = ds.VPSDE()
    mix = ds.datasets.eight_gaussians()
    steps = 100 if quick else 200
    nothing = lambda info: None  # noqa: E731
    rows = []
    # the callback path's own cost, with a score that costs almost nothing
    cases = [("numpy -x", 256, lambda x, t: -x), ("numpy -x", 4096, lambda x, t: -x),
             ("builtin mixture", 4096, mix)]
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(1)
        torch.manual_seed(0)
        mlp = ds.training.mlp(2)
        net = ds.network_score(mlp, vp, prediction="eps")
        cases += [("torch mlp eps", 256, net), ("torch mlp eps", 4096, net)]
    threads = ds.get_num_threads()
    ds.set_num_threads(1)  # the same thread count with and without (a callback run is serial when small)
    try:
        for name, batch, score in cases:
            x = np.random.default_rng(0).standard_normal((batch, 2))
            cases_t = {
                "without": lambda: ds.reverse(vp, score, x, steps, rng=0),
                "with": lambda: ds.reverse(vp, score, x, steps, rng=0, callback=nothing),
            }
            if name.startswith("torch"):
                xt = torch.from_numpy(x).float()
                tt = torch.full((batch,), 0.5)

                def bare():
                    with torch.inference_mode():
                        for _ in range(steps):
                            mlp(xt, tt)

                cases_t["network"] = bare
                x_tensor = torch.from_numpy(x)
                cases_t["tensor without"] = lambda: ds.reverse(vp, score, x_tensor, steps, rng=0)
                cases_t["tensor with"] = lambda: ds.reverse(vp, score, x_tensor, steps, rng=0, callback=nothing)
            t = round_robin(cases_t, repeats)
            row = {"score": name, "batch": batch, "steps": steps, **{k: summary(v) for k, v in t.items()}}
            row["us_per_step"] = 1e6 * (row["with"]["median"] - row["without"]["median"]) / steps
            row["us_per_step_best"] = 1e6 * (row["with"]["best"] - row["without"]["best"]) / steps
            beyond = ""
            if "network" in row:
                row["with_beyond_network_us_per_step"] = 1e6 * (row["with"]["best"] - row["network"]["best"]) / steps
                row["without_beyond_network_us_per_step"] = (
                    1e6 * (row["without"]["best"] - row["network"]["best"]) / steps)
                beyond = (f"; beyond the bare network (best): {row['without_beyond_network_us_per_step']:.1f} "
                          f"without, {row['with_beyond_network_us_per_step']:.1f} with")
            if "tensor with" in row:
                for key in ("with", "without"):
                    row[f"tensor_{key}_beyond_network_us_per_step"] = (
                        1e6 * (row[f"tensor {key}"]["best"] - row["network"]["best"]) / steps)
                row["tensor_us_per_step"] = 1e6 * (row["tensor with"]["median"]
                                                   - row["tensor without"]["median"]) / steps
                beyond += (f"; torch state: +{row['tensor_us_per_step']:.1f} us/step (median), beyond the "
                           f"network {row['tensor_without_beyond_network_us_per_step']:.1f} without, "
                           f"{row['tensor_with_beyond_network_us_per_step']:.1f} with")
            rows.append(row)
            print(f"callback  {name:<16} batch={batch:>5} steps={steps}  without {row['without']['median']:.4f} s"
                  f"  with {row['with']['median']:.4f} s  +{row['us_per_step']:.1f} us/step (median), "
                  f"+{row['us_per_step_best']:.1f} (best){beyond}")
        rows += conversion_rows(repeats)
    finally:
        ds.set_num_threads(threads)
    return rows


def conversion_rows(repeats):
    """What a tensor state adds to each callback call, alone: the callback
    of a torch or JAX state (diffsde._frameworks.StateIO.callback) wrapping
    ``lambda info: None``, against the bare lambda, on one step's ``info``
    (state and denoised estimate of shape (batch, 2)); best of ``repeats``
    timeit rounds, which a loaded machine disturbs least."""
    import timeit

    from diffsde._frameworks import StateIO

    nothing = lambda info: None  # noqa: E731
    rows = []
    for framework in ("torch", "jax"):
        try:
            __import__(framework)
        except ImportError:
            continue
        for batch in (256, 4096):
            dtype = np.float64 if framework == "torch" else np.float32  # JAX's default 32-bit mode
            state = np.random.default_rng(0).standard_normal((batch, 2)).astype(dtype)
            denoised = state.copy()
            denoised.flags.writeable = False
            info = {"i": 0, "t": 0.5, "t_next": 0.49, "x": state, "denoised": denoised}
            wrapped = StateIO(framework).callback(nothing)
            number = 20_000 if framework == "torch" else 500
            best = min(timeit.repeat(lambda: wrapped(info), number=number, repeat=repeats)) / number
            bare = min(timeit.repeat(lambda: nothing(info), number=number, repeat=repeats)) / number
            row = {"conversion": framework, "batch": batch, "us_per_step": 1e6 * (best - bare)}
            rows.append(row)
            print(f"callback  {framework} state conversion alone, batch={batch:>5}: "
                  f"+{row['us_per_step']:.1f} us/step (best of {repeats})")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", choices=("progress", "callback"), help="run one part")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="time.perf_counter (default) or time.process_time (one-thread parts on a loaded machine)")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    info = {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": ds.get_num_threads(),
            "python": platform.python_version(), "numpy": np.__version__, "clock": args.clock,
            "load_average": os.getloadavg(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    print(f"{info['cpu']}, {info['cores']} cores, diffsde threads {info['threads']}; "
          f"median of {args.repeats}")
    result = {"machine": info}
    for part, run in (("progress", progress_part), ("callback", callback_part)):
        if args.only in (None, part):
            result[part] = run(args.repeats, args.quick)
    if args.json:
        day = datetime.date.today().isoformat()
        only = f"{args.only}-" if args.only else ""
        path = ROOT / "benchmarks" / "results" / f"overhead-{only}{day}{'-quick' if args.quick else ''}.json"
        path.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
