#!/usr/bin/env python
"""diffsde side by side with a NumPy loop, a torch loop, torchsde and diffrax.

Usage::

    pip install -r benchmarks/requirements.txt     # competitors (optional)
    python benchmarks/compare.py --quick            # < 10 min; the README's table
    python benchmarks/compare.py --full             # larger grid
    python benchmarks/compare.py --quick --baseline DIR   # also an older diffsde

Four workloads, the same mathematics and the same step count for every
library, float64 throughout (jax runs with ``jax_enable_x64``), linear VP
schedule beta(t) = 0.1 + 19.9 t on [0, 1], h = 1/steps:

1. ``forward``: forward VP Euler-Maruyama, no score,
   x += -beta(t_k)/2 x h + sqrt(beta(t_k) h) z, from x0 ~ N(2, 0.25);
2. ``reverse``: reverse VP Euler-Maruyama (alpha = 1) with the exact score of
   2-D eight Gaussians, x <- x (1 + beta h/2) + beta h s(x, t_k) + sqrt(beta h) z,
   t_k = 1 .. h, from x_T drawn from the exact marginal at t = 1;
3. ``ddpm_callback``: DDPM ancestral sampling (``DDPM.from_sde(vp, steps)``)
   with a Python-callable NumPy score (the exact score of the chain's
   marginals of 1-D data N(2, 0.25)); reported as the per-step overhead of
   diffsde's callback path: (time(run) - time(steps x the callback alone)) / steps;
   the same loop in NumPy, calling the same function, is the reference;
4. ``ode``: the probability-flow ODE (alpha = 0, Euler),
   x <- x (1 + beta h/2) + beta h/2 s(x, t_k), eight-Gaussians exact score.

"Elements" are elements of the state array (a 2-D workload with 10^5 elements
has 5 x 10^4 paths); times are ns per element-step.

Competitors: a NumPy loop (``Generator.standard_normal(out=...)``, in-place
updates, single-threaded by nature); a torch CPU loop (in-place ops,
``Tensor.normal_``); torchsde ``sdeint(method="euler", dt=h)`` with its default
Brownian motion (reverse time as s = 1 - t, since sdeint integrates forward);
diffrax ``Euler`` under ``jax.jit`` (ahead-of-time compiled: compile time is
measured separately and excluded) with ``VirtualBrownianTree(tol=h/2)`` and
``UnsafeBrownianPath`` (``adjoint=ForwardMode()``, which UnsafeBrownianPath
requires; used for both), and ``ODETerm`` + ``Euler`` for the ODE. torch and
jax run in subprocesses, one per thread setting (XLA reads its thread flags at
import; two OpenMP runtimes in one process would also contend): 1 thread is
``torch.set_num_threads(1)`` / ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1``, all cores is ``torch.set_num_threads(n)`` /
XLA's default. diffsde uses ``ds.set_num_threads`` with its shipped serial
thresholds (runs below 5000 elements stay serial by design). Every 1-thread
measurement (diffsde, NumPy, the floor, the torch and jax workers) runs
pinned to one core (``os.sched_setaffinity``), because XLA's single-thread
flags do not make diffrax single-threaded: unpinned, its "1 thread" runs used
1.7-1.95 cores (cpu/wall of the 2026-11-23 run, 26.7 ns/element-step for
reverse EM against 11.2 for diffsde). Each measurement also records process
CPU time / wall time, the threads actually used.

Every library's final samples are checked (mean, variance, and for the 2-D
workloads the mean radius) against the exact target law, or, failing that,
against diffsde's own samples at the same size and steps (the discretization
bias is the same for everyone); the check is printed and a failure is marked.

The machine's floor is measured in the same run: ``ds.standard_normal`` (1 and
all threads) and NumPy's ``Generator.standard_normal`` per normal, and
``np.copyto`` of the state per element. Each SDE workload is also given as a
multiple of diffsde's normal generation at the same size and thread count
(one normal per element-step is unavoidable); the ODE as a multiple of the
copy.

Timing: one run first; if it took > 5 s it counts and two more follow (3
repeats), otherwise it is a warm-up and 3..7 repeats follow (about 1 s, 3 s
with --full, in all); median, min and max are kept. Measurements are capped at
~2e9 element-steps (fewer steps at large batch); a competitor slower than 10x
the NumPy loop runs only up to 10^6 elements (10^5 with --quick), and a run
estimated (from the previous size) to take longer than ``max_run_seconds``
is skipped with that reason.

With ``--baseline DIR`` (a checkout of diffsde built in place, e.g. by
``git worktree add DIR <commit>`` and ``python setup.py build_ext --inplace``
there), workloads 1, 2 and 4 are also run with that build, in a subprocess
right after diffsde's own measurements, so that before and after, and each
one's ratio to every competitor, come from the same run on the same machine:
an extra column in the tables and the targets evaluated for both.

Output: a Markdown table (printed, and written to
``benchmarks/results/compare-<date>[-quick].md``), a JSON file with the machine,
every library's version and every measurement (median/min/max, moments,
check, compile time), and a PNG plot (ns per element-step against batch size).

Wall time: ``--quick`` took 6.2 min on the idle 2-core CI machine (AMD EPYC),
and 9.6 min once while other processes kept both cores busy (its 2-thread
figures were then meaningless; the header of the Markdown file gives the
busy-core readings). ``--full`` was not run; from the quick run's speeds it
should take about 2-2.5 hours, mostly torch, torchsde, diffrax's
VirtualBrownianTree and the NumPy loop on the reverse and ODE workloads at
10^6-10^7 elements.
This file is a benchmark, never run by the tests.
"""
import argparse
import datetime
import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"

BETA_MIN, BETA_MAX = 0.1, 20.0
DATA_MEAN, DATA_VAR = 2.0, 0.25        # workloads 1 and 3: x0 ~ N(2, 0.25)
RADIUS, STD = 2.0, 0.1                  # eight Gaussians (ds.datasets.eight_gaussians())
N_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
THREADS = sorted({1, N_CORES})
LONG_RUN = 5.0                          # seconds: from here on, 3 repeats

WORKLOADS = {
    "forward": "1. forward VP Euler-Maruyama, no score",
    "reverse": "2. reverse VP Euler-Maruyama (alpha=1), eight-Gaussians exact score",
    "ddpm_callback": "3. DDPM ancestral, Python-callable NumPy score (1-D Gaussian data)",
    "ode": "4. probability-flow ODE (alpha=0, Euler), eight-Gaussians exact score",
}
OURS = ("diffsde", "diffsde_baseline")   # never a competitor of each other
LIBS = {  # key: label
    "diffsde": "diffsde",
    "diffsde_baseline": "diffsde baseline",
    "numpy": "NumPy loop",
    "torch": "torch loop",
    "torchsde": "torchsde",
    "diffrax_vbt": "diffrax VBT",
    "diffrax_unsafe": "diffrax Unsafe",
}
# which libraries run which workload (None: not applicable, with the reason)
NOT_APPLICABLE = {
    ("ddpm_callback", "torch"): "workload 3 measures diffsde's Python-callback path; the NumPy loop "
                                "calling the same function is its reference",
    ("ddpm_callback", "torchsde"): "as above",
    ("ddpm_callback", "diffrax_vbt"): "as above",
    ("ddpm_callback", "diffrax_unsafe"): "as above",
    ("ode", "torchsde"): "torchsde integrates SDEs only (an ODE is torchdiffeq's job)",
    ("ode", "diffrax_unsafe"): "the ODE has no Brownian path: one diffrax entry (ODETerm + Euler), "
                               "shown as diffrax VBT",
}

QUICK = dict(
    grid={
        "forward": [(10**3, 2000), (10**4, 1000), (10**5, 200), (10**6, 100)],
        "reverse": [(10**3, 1000), (10**4, 500), (10**5, 100)],
        "ddpm_callback": [(10**3, 1000), (10**4, 1000), (10**5, 200), (10**6, 100)],
        "ode": [(10**3, 1000), (10**4, 500), (10**5, 100)],
    },
    budget=1.0,             # seconds of repeats per short measurement
    slow_limit=10**5,       # competitors > 10x the NumPy loop: up to this many elements
    max_run_seconds=20.0,
    floor_target=2e7,       # elements per floor measurement
)
FULL = dict(
    grid={
        "forward": [(10**3, 2000), (10**4, 2000), (10**5, 2000), (10**6, 2000), (10**7, 200)],
        "reverse": [(10**3, 2000), (10**4, 2000), (10**5, 1000), (10**6, 200), (10**7, 100)],
        "ddpm_callback": [(10**3, 2000), (10**4, 2000), (10**5, 1000), (10**6, 1000)],
        "ode": [(10**3, 2000), (10**4, 2000), (10**5, 1000), (10**6, 200), (10**7, 100)],
    },
    budget=3.0,
    slow_limit=10**6,
    max_run_seconds=300.0,
    floor_target=1e8,
)
MAX_ELEMENT_STEPS = 2e9


def log(msg=""):
    print(msg, flush=True)


# ---- the mathematics, shared ---------------------------------------------------

def beta(t):
    return BETA_MIN + (BETA_MAX - BETA_MIN) * t


def marginal(t):
    """m(t), s(t) of the linear VP SDE."""
    big_b = BETA_MIN * t + 0.5 * (BETA_MAX - BETA_MIN) * t * t
    return math.exp(-0.5 * big_b), math.sqrt(-math.expm1(-big_b))


def mixture():
    """log-weights (K,), means (K, 2), variances (K,) of the eight Gaussians."""
    angles = np.arange(8) * (2 * np.pi / 8)
    means = RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return np.log(np.full(8, 1 / 8)), means, np.full(8, STD**2)


def reverse_coefficients(steps, alpha):
    """Per step j = 0..steps-1 (t_k = 1 - j h, k = steps - j): a, b, c of
    x <- a x + b s(x, t_k) + c z, and (m, s) of the marginal at t_k."""
    h = 1.0 / steps
    rows = []
    for j in range(steps):
        t = 1.0 - j * h
        bt = beta(t)
        m, s = marginal(t)
        rows.append((t, 1 + 0.5 * bt * h, 0.5 * (1 + alpha**2) * bt * h, alpha * math.sqrt(bt * h), m, s))
    return rows


def initial_state(workload, elements, seed=12345):
    """The start every library gets (NumPy only, so workers need no diffsde)."""
    rng = np.random.default_rng(seed)
    if workload == "forward":
        return DATA_MEAN + math.sqrt(DATA_VAR) * rng.standard_normal(elements)
    if workload in ("reverse", "ode"):
        _, means, var = mixture()
        m, s = marginal(1.0)
        comp = rng.integers(0, 8, elements // 2)
        sd = np.sqrt(m * m * var[comp] + s * s)[:, None]
        return m * means[comp] + sd * rng.standard_normal((elements // 2, 2))
    raise ValueError(workload)


def targets(workload):
    """Exact moments of the final law."""
    if workload == "forward":
        m, s = marginal(1.0)
        return {"mean": m * DATA_MEAN, "var": m * m * DATA_VAR + s * s}
    if workload == "ddpm_callback":
        return {"mean": DATA_MEAN, "var": DATA_VAR}
    # eight Gaussians: per-coordinate variance R^2/2 + std^2; E|x| of a Rice(R, std)
    return {"mean": 0.0, "var": 0.5 * RADIUS**2 + STD**2, "radius": RADIUS + STD**2 / (2 * RADIUS)}


def moments(x):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2 and x.shape[1] == 2:
        r = np.linalg.norm(x, axis=1)
        mean = x.mean(axis=0)
        return {"n": int(x.shape[0]), "mean": float(mean[np.abs(mean).argmax()]), "var": float(x.var(axis=0).mean()),
            "radius": float(r.mean()), "radius_var": float(r.var()),
            "finite": bool(np.all(np.isfinite(x)))}
    x = x.ravel()
    return {"n": int(x.size), "mean": float(x.mean()), "var": float(x.var()), "finite": bool(np.all(np.isfinite(x)))}


def _close(stats, ref, slack):
    """Every moment within 5 standard errors (plus a relative slack) of ref."""
    n, var = stats["n"], max(stats["var"], 1e-300)
    tol = {"mean": 5 * math.sqrt(var / n) + slack * math.sqrt(var),
           "var": 5 * var * math.sqrt(2 / n) + slack * var}
    if "radius" in ref:
        tol["radius"] = 5 * math.sqrt(stats["radius_var"] / n) + slack * ref["radius"]
    bad = [f"{k} {stats[k]:.4g} vs {ref[k]:.4g} (tol {tol[k]:.2g})" for k in tol if abs(stats[k] - ref[k]) > tol[k]]
    return not bad, bad


def check(workload, stats, ds_stats, ref_name="diffsde's"):
    """(ok, text): against the exact target (3% slack for the discretization),
    else against diffsde's samples of the same size and steps (2% slack; for
    diffsde itself, the NumPy loop's)."""
    if stats is None or not stats.get("finite", False):
        return False, "non-finite or missing samples"
    ok, bad = _close(stats, targets(workload), 0.03)
    if ok:
        return True, "exact target"
    if ds_stats is not None:
        ok2, bad2 = _close(stats, ds_stats, 0.02)
        if ok2:
            return True, f"{ref_name} moments"
        return False, "; ".join(bad2)
    return False, "; ".join(bad)


# ---- timing --------------------------------------------------------------------

ONE_CORE = min(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


class pinned:
    """``with pinned(threads):`` runs the block on one core when threads == 1
    (the 1-thread figures mean one core for every library), else unchanged."""

    def __init__(self, threads):
        self.on = threads == 1 and ONE_CORE is not None

    def __enter__(self):
        if self.on:
            self.saved = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {ONE_CORE})
        return self

    def __exit__(self, *exc):
        if self.on:
            os.sched_setaffinity(0, self.saved)
        return False


def busy_cores(seconds=1.0):
    """Cores busy (by anyone) over ``seconds`` of /proc/stat while this process
    sleeps: other processes' load, which slows every multi-threaded timing."""
    def read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    try:
        t0, i0 = read()
        time.sleep(seconds)
        t1, i1 = read()
    except OSError:
        return None
    return N_CORES * (1 - (i1 - i0) / max(t1 - t0, 1))


def wait_quiet(limit, threshold=0.3):
    """Wait up to ``limit`` seconds for the other processes' load to drop below
    ``threshold`` cores; returns the last reading."""
    deadline = time.perf_counter() + limit
    busy = busy_cores()
    while busy is not None and busy > threshold and time.perf_counter() < deadline:
        log(f"  other processes keep {busy:.2f} cores busy; waiting")
        time.sleep(10)
        busy = busy_cores()
    return busy


def cpu_seconds():
    """User + system CPU time of the process, all threads (clock_gettime's
    resolution; os.times() ticks in 10 ms)."""
    return time.process_time()


def time_runs(run, budget):
    """One run; > LONG_RUN s: it counts and two more follow, else it is a
    warm-up and 3..7 more follow. Returns seconds, cpu/wall, last output."""
    t0 = time.perf_counter()
    out = run()
    first = time.perf_counter() - t0
    if first > LONG_RUN:
        seconds, n_more = [first], 2
    else:
        seconds, n_more = [], max(3, min(7, math.ceil(budget / max(first, 1e-9))))
    c0, w0 = cpu_seconds(), time.perf_counter()
    cpu = [] if first <= LONG_RUN else None
    for _ in range(n_more):
        t0, c1 = time.perf_counter(), cpu_seconds()
        out = run()
        seconds.append(time.perf_counter() - t0)
        if cpu is not None:
            cpu.append(cpu_seconds() - c1)
    cpu_per_wall = (cpu_seconds() - c0) / max(time.perf_counter() - w0, 1e-9)
    time_runs.last_cpu = cpu   # process CPU seconds per timed run (None when the first run counted)
    return seconds, cpu_per_wall, out


def summarize(rec, seconds, element_steps):
    rec["seconds"] = seconds
    rec["median_s"], rec["min_s"], rec["max_s"] = statistics.median(seconds), min(seconds), max(seconds)
    rec["ns_per_element_step"] = {k: rec[f"{k}_s"] / element_steps * 1e9 for k in ("median", "min", "max")}
    return rec


class Skip(Exception):
    pass


def plan_rows(cfg, workload):
    rows = []
    for elements, steps in cfg["grid"][workload]:
        steps = int(min(steps, max(1, MAX_ELEMENT_STEPS // elements)))
        rows.append((int(elements), steps))
    return rows


def gate(cfg, workload, lib, threads, elements, steps, history, numpy_ns):
    """Raise Skip when a competitor is too slow for this size."""
    prev = [r for r in history if r["lib"] == lib and r["threads"] == threads and r["workload"] == workload
            and r.get("ns_per_element_step")]
    if not prev:
        return
    last = max(prev, key=lambda r: r["elements"])
    ns = last["ns_per_element_step"]["median"]
    ref = numpy_ns.get(workload, {}).get(str(last["elements"]))
    if lib != "numpy" and ref and ns > 10 * ref and elements > cfg["slow_limit"]:
        raise Skip(f"{ns / ref:.0f}x slower than the NumPy loop at {last['elements']:.0e} elements: "
                   f"run only up to {cfg['slow_limit']:.0e}")
    est = ns * elements * steps * 1e-9
    if est > cfg["max_run_seconds"]:
        raise Skip(f"estimated {est:.0f} s per run > max_run_seconds {cfg['max_run_seconds']:.0f}")


def measure(cfg, workload, lib, threads, elements, steps, factory, history, numpy_ns, extra=None):
    """Time factory(...)'s run (a callable returning the final state)."""
    rec = {"workload": workload, "lib": lib, "threads": threads, "elements": elements, "steps": steps,
           "paths": elements // 2 if workload in ("reverse", "ode") else elements}
    try:
        gate(cfg, workload, lib, threads, elements, steps, history, numpy_ns)
        built = factory()
        run, info = built if isinstance(built, tuple) else (built, {})
        rec.update(info)
        seconds, cpu_per_wall, out = time_runs(run, cfg["budget"])
        summarize(rec, seconds, elements * steps)
        rec["cpu_per_wall"] = cpu_per_wall
        if time_runs.last_cpu:
            # CPU time of the process per element-step: for a run on one core
            # the work itself, robust to other processes taking the core
            rec["cpu_ns_per_element_step"] = statistics.median(time_runs.last_cpu) / (elements * steps) * 1e9
        rec["moments"] = moments(out() if callable(out) else out)
        rec["status"] = "ok"
    except Skip as exc:
        rec["status"], rec["reason"] = "skipped", str(exc)
    except MemoryError as exc:
        rec["status"], rec["reason"] = "skipped", f"MemoryError: {exc}"
    except Exception as exc:  # noqa: BLE001 - a failing competitor is reported, not fatal
        rec["status"], rec["reason"] = "failed", f"{type(exc).__name__}: {exc}"
        rec["traceback"] = traceback.format_exc(limit=3)
    if extra:
        rec.update(extra)
    history.append(rec)
    ns = rec.get("ns_per_element_step", {}).get("median")
    log(f"  {workload:14}{LIBS[lib]:16}{threads:>2}T {elements:>9.0e} x {steps:>5} steps: "
        + (f"{ns:9.2f} ns/el-step  (cpu/wall {rec['cpu_per_wall']:.2f}"
           + (f", compile {rec['compile_seconds']:.2f} s" if 'compile_seconds' in rec else "") + ")"
           if ns is not None else f"{rec['status']}: {rec.get('reason')}"))
    return rec


# ---- NumPy ---------------------------------------------------------------------

def np_mixture_score(x, m, s, logw, means, var):
    """The exact eight-Gaussians score at t (all components at once)."""
    v = m * m * var + s * s                                   # (K,)
    diff = m * means[None] - x[:, None, :]                     # (B, K, 2)
    logits = logw - 0.5 * np.einsum("bkd,bkd->bk", diff, diff) / v - np.log(v)
    logits -= logits.max(axis=1, keepdims=True)
    gamma = np.exp(logits)
    gamma /= gamma.sum(axis=1, keepdims=True)
    return np.einsum("bk,bkd->bd", gamma / v, diff)


def numpy_forward(x0, steps):
    h = 1.0 / steps
    a = [1 - 0.5 * beta(k * h) * h for k in range(steps)]
    c = [math.sqrt(beta(k * h) * h) for k in range(steps)]
    rng = np.random.Generator(np.random.PCG64(0))

    def run():
        x = x0.copy()
        z = np.empty_like(x)
        normal = rng.standard_normal
        for k in range(steps):
            normal(out=z)
            x *= a[k]
            z *= c[k]
            x += z
        return x
    return run


def numpy_reverse(x_T, steps, alpha):
    rows = reverse_coefficients(steps, alpha)
    logw, means, var = mixture()
    rng = np.random.Generator(np.random.PCG64(0))

    def run():
        x = x_T.copy()
        z = np.empty_like(x)
        for _, a, b, c, m, s in rows:
            score = np_mixture_score(x, m, s, logw, means, var)
            x *= a
            score *= b
            x += score
            if c:
                rng.standard_normal(out=z)
                z *= c
                x += z
        return x
    return run


# ---- torch (worker) ----------------------------------------------------------------

def torch_mixture_score(torch, x, m, s, logw, means, var):
    v = m * m * var + s * s
    diff = m * means[None] - x[:, None, :]
    logits = logw - 0.5 * (diff * diff).sum(2) / v - torch.log(v)
    gamma = torch.softmax(logits, dim=1)
    return torch.einsum("bk,bkd->bd", gamma / v, diff)


def torch_factories(workload, x0, steps):
    import torch
    import torchsde
    dt = torch.float64
    logw, means, var = (torch.from_numpy(a) for a in mixture())
    h = 1.0 / steps
    alpha = 1.0 if workload == "reverse" else 0.0
    x0_t = torch.from_numpy(x0)

    def loop():
        gen = torch.Generator().manual_seed(0)
        if workload == "forward":
            a = [1 - 0.5 * beta(k * h) * h for k in range(steps)]
            c = [math.sqrt(beta(k * h) * h) for k in range(steps)]

            def run():
                x = x0_t.clone()
                z = torch.empty_like(x)
                for k in range(steps):
                    z.normal_(generator=gen)
                    x.mul_(a[k]).add_(z, alpha=c[k])
                return x.numpy()
            return run
        rows = reverse_coefficients(steps, alpha)

        def run():
            x = x0_t.clone()
            z = torch.empty_like(x)
            for _, a, b, c, m, s in rows:
                score = torch_mixture_score(torch, x, m, s, logw, means, var)
                x.mul_(a).add_(score, alpha=b)
                if c:
                    z.normal_(generator=gen)
                    x.add_(z, alpha=c)
            return x.numpy()
        return run

    def sde():
        if workload == "ode":
            raise Skip(NOT_APPLICABLE[("ode", "torchsde")])
        seen = set()   # the distinct times f is called at: sdeint also calls f once at t0 to check shapes

        class Forward(torch.nn.Module):
            noise_type, sde_type = "diagonal", "ito"

            def f(self, t, y):
                seen.add(float(t))
                return (-0.5 * beta(float(t))) * y

            def g(self, t, y):
                return torch.full_like(y, math.sqrt(beta(float(t))))

        class Reverse(torch.nn.Module):   # s = 1 - t: dx = [b/2 x + b s(x, t)] ds + sqrt(b) dW
            noise_type, sde_type = "diagonal", "ito"

            def f(self, s_time, y):
                seen.add(float(s_time))
                t = 1.0 - float(s_time)
                bt = beta(t)
                m, s = marginal(t)
                return 0.5 * bt * y + bt * torch_mixture_score(torch, y, m, s, logw, means, var)

            def g(self, s_time, y):
                return torch.full_like(y, math.sqrt(beta(1.0 - float(s_time))))

        model = Forward() if workload == "forward" else Reverse()
        y0 = x0_t.reshape(-1, 1) if workload == "forward" else x0_t
        ts = torch.tensor([0.0, 1.0], dtype=dt)
        # dt a hair above h: the last step is clipped to t = 1 exactly, so
        # there are exactly `steps` steps (counted below), no tiny extra one
        info = {}

        def run():
            seen.clear()
            out = torchsde.sdeint(model, y0.clone(), ts, method="euler", dt=h * (1 + 1e-9))
            info["steps_taken"] = len(seen)
            if len(seen) != steps:
                raise RuntimeError(f"torchsde took {len(seen)} steps, not {steps}")
            return out[-1].reshape(x0.shape).numpy()
        return run, info

    return {"torch": loop, "torchsde": sde}


# ---- jax / diffrax (worker) ---------------------------------------------------------

def jax_factories(workload, x0, steps):
    import jax
    jax.config.update("jax_enable_x64", True)
    import diffrax
    import jax.numpy as jnp
    import lineax as lx
    logw, means, var = (jnp.asarray(a) for a in mixture())
    h = 1.0 / steps
    alpha = 1.0 if workload == "reverse" else 0.0
    shape2 = x0.shape
    y0 = jnp.asarray(x0.ravel())
    n = y0.size

    def jbeta(t):
        return BETA_MIN + (BETA_MAX - BETA_MIN) * t

    def jscore(y, t):
        big_b = BETA_MIN * t + 0.5 * (BETA_MAX - BETA_MIN) * t * t
        m, s2 = jnp.exp(-0.5 * big_b), -jnp.expm1(-big_b)
        v = m * m * var + s2
        x = y.reshape(shape2)
        diff = m * means[None] - x[:, None, :]
        logits = logw - 0.5 * jnp.sum(diff * diff, axis=2) / v - jnp.log(v)
        gamma = jax.nn.softmax(logits, axis=1)
        return jnp.einsum("bk,bkd->bd", gamma / v, diff).reshape(-1)

    if workload == "forward":
        def drift(t, y, args):
            return -0.5 * jbeta(t) * y

        def diffusion(t, y, args):
            return lx.DiagonalLinearOperator(jnp.full_like(y, jnp.sqrt(jbeta(t))))
    else:  # s = 1 - t
        def drift(s_time, y, args):
            t = 1.0 - s_time
            bt = jbeta(t)
            return 0.5 * bt * y + 0.5 * (1 + alpha**2) * bt * jscore(y, t)

        def diffusion(s_time, y, args):
            return lx.DiagonalLinearOperator(jnp.full_like(y, alpha * jnp.sqrt(jbeta(1.0 - s_time))))

    def make(kind):
        def factory():
            if workload == "ode" and kind == "unsafe":
                raise Skip(NOT_APPLICABLE[("ode", "diffrax_unsafe")])

            def solve(y, key):
                if workload == "ode":
                    terms = diffrax.ODETerm(drift)
                else:
                    bm = (diffrax.VirtualBrownianTree(0.0, 1.0, tol=h / 2, shape=(n,), key=key) if kind == "vbt"
                          else diffrax.UnsafeBrownianPath(shape=(n,), key=key))
                    terms = diffrax.MultiTerm(diffrax.ODETerm(drift), diffrax.ControlTerm(diffusion, bm))
                sol = diffrax.diffeqsolve(terms, diffrax.Euler(), 0.0, 1.0, h, y,
                                          saveat=diffrax.SaveAt(t1=True), max_steps=steps,
                                          adjoint=diffrax.ForwardMode(), throw=True)
                return sol.ys[-1], sol.stats["num_steps"]
            key = jax.random.key(0)
            t0 = time.perf_counter()
            compiled = jax.jit(solve).lower(y0, key).compile()
            info = {"compile_seconds": time.perf_counter() - t0}
            calls = [0]

            def run():
                calls[0] += 1
                y, num = compiled(y0, jax.random.key(calls[0]))
                y.block_until_ready()
                info["steps_taken"] = int(num)
                if int(num) != steps:
                    raise RuntimeError(f"diffrax took {int(num)} steps, not {steps}")
                return y
            return run, info
        return factory

    out = {"diffrax_vbt": make("vbt"), "diffrax_unsafe": make("unsafe")}
    return out, lambda y: np.asarray(y).reshape(shape2)


def worker(kind, threads, plan_path, out_path):
    """Run one competitor family at one thread setting (a subprocess)."""
    plan = json.loads(Path(plan_path).read_text())
    cfg, numpy_ns = plan["cfg"], plan["numpy_ns"]
    history, versions, errors = [], {}, {}
    if threads == 1 and ONE_CORE is not None:   # before torch/jax start their threads
        os.sched_setaffinity(0, {ONE_CORE})
        versions["pinned_to_core"] = ONE_CORE
    if kind == "baseline":
        return baseline_worker(threads, plan, out_path, history, versions)
    try:
        if kind == "torch":
            import torch
            torch.set_num_threads(threads)
            versions["torch_threads"] = torch.get_num_threads()
        else:
            import jax
            versions["jax_devices"] = [str(d) for d in jax.devices()]
    except Exception as exc:  # noqa: BLE001
        errors["import"] = f"{type(exc).__name__}: {exc}"
    for workload in ("forward", "reverse", "ode"):
        for elements, steps in map(tuple, plan["rows"][workload]):
            x0 = initial_state(workload, elements)
            if "import" in errors:
                facs, post = {}, None
            elif kind == "torch":
                try:
                    facs, post = torch_factories(workload, x0, steps), None
                except Exception as exc:  # noqa: BLE001
                    errors["import"] = f"{type(exc).__name__}: {exc}"
                    facs, post = {}, None
            else:
                facs, post = jax_factories(workload, x0, steps)
            libs = ("torch", "torchsde") if kind == "torch" else ("diffrax_vbt", "diffrax_unsafe")
            for lib in libs:
                if (workload, lib) in NOT_APPLICABLE:
                    continue
                if lib not in facs:
                    history.append({"workload": workload, "lib": lib, "threads": threads, "elements": elements,
                                    "steps": steps, "status": "skipped", "reason": errors.get("import")})
                    continue

                def factory(f=facs[lib]):
                    built = f()
                    run, info = built if isinstance(built, tuple) else (built, {})
                    if post is None:
                        return run, info
                    return (lambda: post(run())), info
                measure(cfg, workload, lib, threads, elements, steps, factory, history, numpy_ns)
            del x0
    Path(out_path).write_text(json.dumps({"measurements": history, "info": versions, "errors": errors}))


def baseline_worker(threads, plan, out_path, history, versions):
    """Workloads 1, 2 and 4 with the diffsde built in plan["baseline"] (a
    subprocess, so that the two builds never share a process)."""
    sys.path.insert(0, plan["baseline"])
    import diffsde as ds
    where = Path(ds.__file__).resolve()
    if Path(plan["baseline"]).resolve() not in where.parents:
        raise SystemExit(f"--baseline: imported diffsde from {where}, not from {plan['baseline']}")
    versions.update(diffsde=ds.__version__, diffsde_file=str(where))
    for workload in ("forward", "reverse", "ode"):
        for elements, steps in map(tuple, plan["rows"][workload]):
            x0 = initial_state(workload, elements)
            measure(plan["cfg"], workload, "diffsde_baseline", threads, elements, steps,
                    lambda: diffsde_factories(ds, workload, x0, steps, threads), history, plan["numpy_ns"])
    Path(out_path).write_text(json.dumps({"measurements": history, "info": versions, "errors": {}}))


# ---- diffsde, floor, workload 3 (main process) -----------------------------------

def diffsde_factories(ds, workload, x0, steps, threads):
    vp = ds.VPSDE(BETA_MIN, BETA_MAX)
    gm = ds.datasets.eight_gaussians()
    calls = [0]

    def run():
        calls[0] += 1
        ds.set_num_threads(threads)
        if workload == "forward":
            return ds.forward(vp, x0, steps=steps, rng=calls[0]).x
        return ds.reverse(vp, gm, x0, steps, alpha=1.0 if workload == "reverse" else 0.0, rng=calls[0]).x
    return run


def floor_measurements(ds, cfg, sizes):
    """ns per element: ds.standard_normal (1, n threads), NumPy's standard_normal, np.copyto."""
    rows = []
    for elements in sizes:
        z = np.empty(elements)
        src = np.random.default_rng(0).standard_normal(elements)
        calls = max(3, int(cfg["floor_target"] // elements))
        row = {"elements": elements}
        rng = np.random.Generator(np.random.PCG64(0))
        fns = {f"ds_standard_normal_{t}T": (lambda t=t: [ds.set_num_threads(t)] + [
            ds.standard_normal(out=z, rng=k) for k in range(calls)]) for t in THREADS}
        fns["numpy_standard_normal"] = lambda: [rng.standard_normal(out=z) for _ in range(calls)]
        fns["copyto"] = lambda: [np.copyto(z, src) for _ in range(calls)]
        for name, fn in fns.items():
            with pinned(1 if not name.startswith("ds_standard_normal") or name.endswith("_1T") else 2):
                fn()
                ts = []
                for _ in range(5):
                    t0 = time.perf_counter()
                    fn()
                    ts.append(time.perf_counter() - t0)
            row[name] = {"median": statistics.median(ts) / (calls * elements) * 1e9,
                         "min": min(ts) / (calls * elements) * 1e9, "max": max(ts) / (calls * elements) * 1e9}
        rows.append(row)
        log(f"  {elements:>9.0e}: " + "  ".join(f"{k} {v['median']:.3f}" for k, v in row.items() if k != "elements"))
    return rows


def callback_workload(ds, cfg, history, steps_rows):
    """Workload 3: diffsde's callback path against the callback alone, and a
    NumPy loop with the same callback."""
    vp = ds.VPSDE(BETA_MIN, BETA_MAX)
    out = []
    for elements, steps in steps_rows:
        ddpm = ds.DDPM.from_sde(vp, steps)
        m_i, s_i = ddpm.marginal_coefficients(np.arange(steps + 1))
        mean_i = (m_i * DATA_MEAN).tolist()
        var_i = (m_i * m_i * DATA_VAR + s_i * s_i).tolist()
        N = steps

        def score(x, t):  # the exact score of the chain's marginal i = t N / T
            i = int(round(t * N))
            return (mean_i[i] - x) / var_i[i]

        rng = np.random.default_rng(7)
        x_T = mean_i[N] + math.sqrt(var_i[N]) * rng.standard_normal(elements)
        ts = ddpm.t[1:][::-1].tolist()   # the score times of the run, t_N .. t_1
        betas = ddpm.betas[::-1]
        a = (1 / np.sqrt(1 - betas)).tolist()
        b = betas.tolist()
        c = np.sqrt(betas).tolist()
        xs = x_T.copy()

        def callback_alone():
            for t in ts:
                score(xs, t)
            return None

        def numpy_run(gen=np.random.Generator(np.random.PCG64(0))):
            x = x_T.copy()
            z = np.empty_like(x)
            for k, t in enumerate(ts):
                s = score(x, t)      # x <- (x + beta_i s) / sqrt(1 - beta_i) + sqrt(beta_i) z
                s *= b[k]
                x += s
                x *= a[k]
                gen.standard_normal(out=z)
                z *= c[k]
                x += z
            return x

        nfe = {}
        for threads in THREADS:
            calls = [0]

            def ds_run(threads=threads, calls=calls):
                calls[0] += 1
                ds.set_num_threads(threads)
                tr = ds.reverse(ddpm, score, x_T, method="ancestral", rng=calls[0])
                nfe["ds"] = tr.nfe
                return tr.x
            with pinned(threads):
                rec_cb = measure(cfg, "ddpm_callback", "diffsde", threads, elements, steps, lambda f=ds_run: f,
                                 [], {})
                cb = time_runs(callback_alone, cfg["budget"])[0]
            rec_cb["callback_seconds"] = cb
            rec_cb["nfe"] = nfe.get("ds")
            history.append(rec_cb)
            out.append(rec_cb)
        with pinned(1):
            rec_np = measure(cfg, "ddpm_callback", "numpy", 1, elements, steps, lambda: numpy_run, [], {})
            cb = time_runs(callback_alone, cfg["budget"])[0]
        rec_np["callback_seconds"] = cb
        history.append(rec_np)
        out.append(rec_np)
        for rec in out[-(len(THREADS) + 1):]:
            if rec["status"] != "ok":
                continue
            cb_med = statistics.median(rec["callback_seconds"])
            rec["callback_us_per_step"] = cb_med / steps * 1e6
            rec["run_us_per_step"] = rec["median_s"] / steps * 1e6
            rec["overhead_us_per_step"] = (rec["median_s"] - cb_med) / steps * 1e6
            rec["overhead_ns_per_element_step"] = (rec["median_s"] - cb_med) / (steps * elements) * 1e9
            log(f"     {LIBS[rec['lib']]} {rec['threads']}T: callback alone {rec['callback_us_per_step']:.2f} us/step,"
                f" run {rec['run_us_per_step']:.2f} us/step, overhead {rec['overhead_us_per_step']:.2f} us/step"
                + (f" (nfe {rec.get('nfe')})" if rec["lib"] == "diffsde" else ""))
    return out


# ---- main ------------------------------------------------------------------------

def version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_commit(tree):
    """The short commit checked out in tree, or None outside a git checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def machine_info(ds):
    cpu = None
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    commit = git_commit(ROOT)
    from diffsde import _core
    return {
        "cpu": cpu, "cpu_count": os.cpu_count(), "cpus_usable": N_CORES, "platform": platform.platform(),
        "python": platform.python_version(), "git_commit": commit, "openmp": bool(_core.openmp()),
        "simd_path": ds.get_simd_path() if hasattr(ds, "get_simd_path") else None,
        "loadavg_start": os.getloadavg(),
        "versions": {"diffsde": ds.__version__, **{p: version(p) for p in (
            "numpy", "torch", "torchsde", "jax", "jaxlib", "diffrax", "equinox", "lineax", "matplotlib")}},
    }


def run_worker(kind, threads, plan, quick):
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    if kind == "jax":
        if threads == 1:
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                                "intra_op_parallelism_threads=1").strip()
        env.setdefault("JAX_PLATFORMS", "cpu")
        env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    with tempfile.TemporaryDirectory() as tmp:
        plan_path, out_path = Path(tmp) / "plan.json", Path(tmp) / "out.json"
        plan_path.write_text(json.dumps(plan))
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--threads", str(threads),
               "--plan", str(plan_path), "--out", str(out_path)]
        proc = subprocess.run(cmd, env=env, text=True, stdout=sys.stdout, stderr=subprocess.PIPE)
        if proc.returncode != 0 or not out_path.exists():
            tail = (proc.stderr or "").strip().splitlines()[-3:]
            return None, f"worker exited {proc.returncode}: {' | '.join(tail)}"
        return json.loads(out_path.read_text()), None


def fmt(v, digits=2):
    if v is None:
        return "—"
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.{digits}f}"


FLOOR_MIN_ELEMENTS = 10**5


def floor_for(floor, workload, elements, threads):
    """The floor of one element-step: ds.standard_normal (the copy for the
    ODE) per element, measured on calls of max(elements, 1e5) elements so a
    Python call's fixed cost does not count as generation."""
    size = max(elements, FLOOR_MIN_ELEMENTS)
    row = min(floor, key=lambda r: abs(math.log(r["elements"] / size)))
    if workload == "ode":
        return row["copyto"]["median"]
    return row[f"ds_standard_normal_{threads}T"]["median"]


def find(results, **kw):
    for r in results:
        if all(r.get(k) == v for k, v in kw.items()):
            return r
    return None


def build_tables(res, cfg):
    out = []
    ms, floor = res["measurements"], res["floor"]
    out.append("### Floor (ns per element; the machine's limit)\n")
    head = "| elements | " + " | ".join(f"ds.standard_normal {t}T" for t in THREADS) + \
        " | NumPy standard_normal | np.copyto |"
    out += [head, "|" + "---|" * (head.count("|") - 1)]
    for row in floor:
        out.append(f"| {row['elements']:.0e} | " + " | ".join(
            fmt(row[f"ds_standard_normal_{t}T"]["median"], 3) for t in THREADS)
            + f" | {fmt(row['numpy_standard_normal']['median'], 3)} | {fmt(row['copyto']['median'], 3)} |")
    out.append("")
    libs = [k for k in LIBS]
    for workload in ("forward", "reverse", "ode"):
        out.append(f"### {WORKLOADS[workload]}\n")
        out.append("ns per element-step, median (× floor: " + ("np.copyto per element" if workload == "ode" else
                   "ds.standard_normal per normal at the same threads") + ", from calls of >= 1e5 elements); "
                   "NumPy runs 1 thread only; last column: the fastest competitor's time / diffsde's at that "
                   "thread count; ✗ = failed the moment check; — = not run (see Skipped)\n")
        cols = [k for k in libs if (workload, k) not in NOT_APPLICABLE
                and (k != "diffsde_baseline" or find(ms, workload=workload, lib=k))]
        head = "| elements | steps | threads | floor | " + " | ".join(LIBS[k] for k in cols) + \
            " | best other / diffsde |"
        out += [head, "|" + "---|" * (head.count("|") - 1)]
        for elements, steps in res["rows"][workload]:
            for t in THREADS:
                fl = floor_for(floor, workload, elements, t)
                cells, ds_ns, others = [], None, []
                for lib in cols:
                    r = find(ms, workload=workload, lib=lib, threads=1 if lib == "numpy" else t,
                             elements=elements)
                    if lib == "numpy" and t != 1:
                        cells.append("(1T)" if r and r["status"] == "ok" else "—")
                        if r and r["status"] == "ok":
                            others.append(r["ns_per_element_step"]["median"])
                        continue
                    if not r or r["status"] != "ok":
                        cells.append("—")
                        continue
                    v = r["ns_per_element_step"]["median"]
                    mark = "" if r.get("check_ok") else " ✗"
                    cells.append(f"{fmt(v)} ({fmt(v / fl, 1)}×){mark}")
                    if lib == "diffsde":
                        ds_ns = v
                    elif r.get("check_ok") and lib not in OURS:
                        others.append(v)
                ratio = f"{min(others) / ds_ns:.1f}×" if ds_ns and others else "—"
                out.append(f"| {elements:.0e} | {steps} | {t} | {fmt(fl, 3)} | " + " | ".join(cells)
                           + f" | {ratio} |")
        out.append("")
    out.append(f"### {WORKLOADS['ddpm_callback']}\n")
    out.append("µs per step: the callback alone (steps × score(x, t) on the same array), the whole run, and "
               "the overhead = run − callback; the last column is the overhead per element-step in ns "
               "(the sampler's own arithmetic and normals).\n")
    head = "| elements | steps | library | threads | callback µs/step | run µs/step | overhead µs/step | " \
           "overhead ns/el-step | check |"
    out += [head, "|" + "---|" * (head.count("|") - 1)]
    for elements, steps in res["rows"]["ddpm_callback"]:
        for lib in ("diffsde", "numpy"):
            for t in (THREADS if lib == "diffsde" else (1,)):
                r = find(ms, workload="ddpm_callback", lib=lib, threads=t, elements=elements)
                if not r or r["status"] != "ok":
                    continue
                out.append(f"| {elements:.0e} | {steps} | {LIBS[lib]} | {t} | {fmt(r['callback_us_per_step'])} | "
                           f"{fmt(r['run_us_per_step'])} | {fmt(r['overhead_us_per_step'])} | "
                           f"{fmt(r['overhead_ns_per_element_step'])} | {'ok' if r.get('check_ok') else '✗'} |")
    out.append("")
    comp = [r for r in ms if r.get("compile_seconds") is not None]
    if comp:
        out.append("### jit compile time (excluded from the timings above), s\n")
        out.append("| workload | library | threads | elements | steps | compile s |")
        out.append("|---|---|---|---|---|---|")
        for r in comp:
            out.append(f"| {r['workload']} | {LIBS[r['lib']]} | {r['threads']} | {r['elements']:.0e} | "
                       f"{r['steps']} | {r['compile_seconds']:.2f} |")
        out.append("")
    return "\n".join(out)


def evaluate_targets(res):
    """The targets for diffsde and, when --baseline ran, the same for the
    baseline build against the same competitors' measurements."""
    text = evaluate_targets_of(res, "diffsde")
    if find(res["measurements"], lib="diffsde_baseline", status="ok"):
        commit = (res["machine"].get("baseline") or {}).get("git_commit")
        text += (f"\n\nThe same targets for the baseline build (git {commit}), against the same competitors' "
                 "measurements:\n\n" + evaluate_targets_of(res, "diffsde_baseline"))
    return text


def evaluate_targets_of(res, ours):
    ms = res["measurements"]
    lines = []

    def ns(workload, lib, threads, elements):
        r = find(ms, workload=workload, lib=lib, threads=threads, elements=elements)
        return r["ns_per_element_step"]["median"] if r and r["status"] == "ok" and r.get("check_ok") else None

    # 1: faster than every competitor at >= 1e5 elements, 1 and all threads
    fails, worst = [], None
    for elements, _ in res["rows"]["forward"]:
        if elements < 10**5:
            continue
        for t in THREADS:
            d = ns("forward", ours, t, elements)
            for lib in LIBS:
                if lib in OURS:
                    continue
                o = ns("forward", lib, 1 if lib == "numpy" else t, elements)
                if d and o:
                    worst = min(worst, o / d) if worst else o / d
                    if o <= d:
                        fails.append(f"{LIBS[lib]} {t}T at {elements:.0e}: {o / d:.2f}x")
    lines.append(f"- workload 1 (faster than every competitor at >= 1e5 elements, 1 and {N_CORES} threads): "
                 + ("MET" if not fails and worst else "MISSED") + f"; smallest competitor/diffsde ratio "
                 f"{worst:.2f}x" if worst else "- workload 1: no data")
    if fails:
        lines.append("  - slower than: " + "; ".join(fails))

    # 2: >= 10x NumPy (1T), >= 3x diffrax, >= 20x torchsde, at the largest size where all ran
    def ratios(workload, lib, threads_list):
        got = []
        for elements, _ in res["rows"][workload]:
            for t in threads_list:
                d = ns(workload, ours, t, elements)
                o = ns(workload, lib, 1 if lib == "numpy" else t, elements)
                if d and o:
                    got.append((elements, t, o / d))
        return got

    def verdict(name, got, need):
        if not got:
            return f"  - {name}: no data"
        big = [g for g in got if g[0] == max(e for e, _, _ in got)]
        s = ", ".join(f"{r:.1f}x ({t}T, {e:.0e})" for e, t, r in got)
        ok = all(r >= need for _, _, r in big)
        return f"  - {name} >= {need}x: {'MET' if ok else 'MISSED'} at the largest size; all: {s}"
    lines.append("- workload 2 (reverse EM, eight Gaussians):")
    lines.append(verdict("vs NumPy loop, 1 thread", ratios("reverse", "numpy", (1,)), 10))
    for lib in ("diffrax_vbt", "diffrax_unsafe"):
        lines.append(verdict(f"vs {LIBS[lib]}", ratios("reverse", lib, THREADS), 3))
    lines.append(verdict("vs torchsde", ratios("reverse", "torchsde", THREADS), 20))
    # 3: callback overhead < 5 us/step beyond the callback and the step's own element work. Even at
    # 1e3 elements that work is not negligible (a normal per element costs about as much as the rest),
    # so it is taken out as the floor measured in the same run: ds.standard_normal per element at that
    # size, on one thread (runs this small stay serial whatever the thread setting; the step's three
    # flops per element stay in, so this errs high).
    cb = [r for r in ms if r["workload"] == "ddpm_callback" and r["lib"] == ours and r["status"] == "ok"]
    if cb:
        def fixed_us(r):
            return r["overhead_us_per_step"] - floor_for(res["floor"], "ddpm_callback", r["elements"],
                                                         1) * r["elements"] * 1e-3
        small = min(r["elements"] for r in cb)
        at_small = [r for r in cb if r["elements"] == small]
        ok = all(fixed_us(r) < 5 for r in at_small)
        lines.append(f"- workload 3 (callback overhead < 5 us/step beyond the callback and the step's normals, "
                     f"at {small:.0e} elements): {'MET' if ok else 'MISSED'}: "
                     + ", ".join(f"{fixed_us(r):.2f} us ({r['threads']}T; {r['overhead_us_per_step']:.2f} us "
                                 "with the normals)" for r in at_small)
                     + "; run − callback at all sizes: " + ", ".join(f"{r['elements']:.0e}/{r['threads']}T "
                                                                    f"{r['overhead_us_per_step']:.1f} us" for r in cb))
    lines.append("- workload 4 (ODE, >= 3x diffrax's jit-compiled Euler at equal steps):")
    lines.append(verdict("vs diffrax ODETerm+Euler", ratios("ode", "diffrax_vbt", THREADS), 3))

    # the same 1-thread ratios in process CPU time (every 1-thread run is on one core, so its CPU time
    # is its work; wall time also counts the time other processes held the core)
    def cpu_ns(workload, lib, elements):
        r = find(ms, workload=workload, lib=lib, threads=1, elements=elements)
        return r.get("cpu_ns_per_element_step") if r and r["status"] == "ok" and r.get("check_ok") else None
    got = []
    for workload, lib in (("reverse", "diffrax_unsafe"), ("reverse", "diffrax_vbt"), ("reverse", "torchsde"),
                          ("ode", "diffrax_vbt"), ("forward", "diffrax_unsafe")):
        for elements, _ in res["rows"][workload]:
            d, o = cpu_ns(workload, ours, elements), cpu_ns(workload, lib, elements)
            if d and o:
                # the ODE has no Brownian path: its diffrax run (kept under diffrax_vbt) is ODETerm + Euler
                name = "diffrax ODETerm" if workload == "ode" else LIBS[lib]
                got.append(f"{workload} vs {name} {elements:.0e}: {o / d:.1f}x")
    if got:
        lines.append("- 1 thread in process CPU time (ratios competitor/diffsde): " + "; ".join(got))
    return "\n".join(lines)


def plot(res, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ms = res["measurements"]
    colors = dict(zip(LIBS, ["black", "tab:brown", "tab:blue", "tab:orange", "tab:green", "tab:red",
                             "tab:purple"]))
    fig, axes = plt.subplots(2, 2, figsize=(13, 9.5))
    for ax, workload in zip(axes.ravel(), ("forward", "reverse", "ddpm_callback", "ode")):
        for lib in LIBS:
            for t in THREADS:
                pts = sorted((r["elements"], r["overhead_ns_per_element_step"] if workload == "ddpm_callback"
                              else r["ns_per_element_step"]["median"]) for r in ms
                             if r["workload"] == workload and r["lib"] == lib and r["threads"] == t
                             and r["status"] == "ok")
                pts = [p for p in pts if p[1] > 0]
                if not pts:
                    continue
                label = LIBS[lib] + (" (ODETerm)" if workload == "ode" and lib == "diffrax_vbt" else "")
                ax.plot(*zip(*pts), marker="o", color=colors[lib], ls="-" if t == 1 else "--",
                        label=f"{label}, {t} thread{'s' if t > 1 else ''}")
        sizes = [e for e, _ in res["rows"][workload]]
        ax.plot(sizes, [floor_for(res["floor"], workload, e, 1) for e in sizes], color="gray", ls=":", lw=2,
                label="floor: " + ("np.copyto" if workload == "ode" else "ds.standard_normal, 1 thread"))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("state elements (batch size x dimension)")
        ax.set_ylabel("ns per element-step" + (" (run - callback)" if workload == "ddpm_callback" else ""))
        ax.set_title(WORKLOADS[workload], fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    from matplotlib.lines import Line2D
    baseline = (res["machine"].get("baseline") or {}).get("git_commit")
    handles = [Line2D([], [], color=colors[k], marker="o",
                      label=v + (f" (git {baseline})" if k == "diffsde_baseline" else "")) for k, v in LIBS.items()
               if find(ms, lib=k, status="ok")]
    handles += [Line2D([], [], color="gray", ls="-", label="1 thread"),
                Line2D([], [], color="gray", ls="--", label=f"{N_CORES} threads"),
                Line2D([], [], color="gray", ls=":", lw=2, label="floor (normals; copy for the ODE)")]
    fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=10, frameon=False)
    fig.suptitle(f"diffsde vs competitors, float64, {res['machine']['cpu']} ({N_CORES} cores); lower is better"
                 " (diffrax VBT in panel 4: ODETerm + Euler)", fontsize=11)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="reduced grid (< 10 min); the README's table")
    mode.add_argument("--full", action="store_true", help="larger grid (the default)")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to this long for other processes' load to drop below 0.3 cores")
    parser.add_argument("--only", nargs="*", help="competitor families to run: numpy torch jax (default all)")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="also time workloads 1, 2 and 4 with the diffsde built in place in DIR (an older "
                             "checkout), in the same run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--plan", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline is not None and not (args.baseline / "diffsde" / "__init__.py").is_file():
        parser.error(f"--baseline {args.baseline}: no diffsde/__init__.py there; give a checkout of diffsde "
                     "built in place (python setup.py build_ext --inplace)")
    if args.worker:
        return worker(args.worker, args.threads, args.plan, args.out)

    sys.path.insert(0, str(ROOT))
    import diffsde as ds
    cfg = QUICK if args.quick else FULL
    families = set(args.only or ("numpy", "torch", "jax"))
    busy0 = wait_quiet(args.wait_quiet) if args.wait_quiet else busy_cores()
    t_start = time.perf_counter()
    info = machine_info(ds)
    info["busy_cores_by_others"] = {"start": busy0}
    info["one_thread_pinned_to_core"] = ONE_CORE
    log("diffsde side by side" + (" (--quick)" if args.quick else " (--full)"))
    log(f"CPU: {info['cpu']}; {N_CORES} usable cores; threads {THREADS}; Python {info['python']}")
    log(f"cores busy with other processes at the start: {busy0:.2f} (of {N_CORES})")
    log("versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    rows = {w: plan_rows(cfg, w) for w in WORKLOADS}
    res = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "quick": bool(args.quick),
           "machine": info, "config": {k: v for k, v in cfg.items()}, "rows": rows, "measurements": [],
           "skipped": [], "threads": THREADS}
    ms = res["measurements"]

    log("\n== floor: ns per element ==")
    sizes = sorted({e for w in rows.values() for e, _ in w} | {FLOOR_MIN_ELEMENTS})
    res["floor"] = floor_measurements(ds, cfg, sizes)

    log("\n== diffsde and the NumPy loop ==")
    numpy_ns = {}
    for workload in ("forward", "reverse", "ode"):
        for elements, steps in rows[workload]:
            x0 = initial_state(workload, elements)
            for t in THREADS:
                with pinned(t):
                    measure(cfg, workload, "diffsde", t, elements, steps,
                            lambda: diffsde_factories(ds, workload, x0, steps, t), ms, {})
            if "numpy" in families:
                fac = numpy_forward(x0, steps) if workload == "forward" else \
                    numpy_reverse(x0, steps, 1.0 if workload == "reverse" else 0.0)
                with pinned(1):
                    r = measure(cfg, workload, "numpy", 1, elements, steps, lambda: fac, ms, numpy_ns)
                if r["status"] == "ok":
                    numpy_ns.setdefault(workload, {})[str(elements)] = r["ns_per_element_step"]["median"]
    log("\n== workload 3: the callback path ==")
    callback_workload(ds, cfg, ms, rows["ddpm_callback"])
    ds.set_num_threads(None)

    info["busy_cores_by_others"]["after_main"] = busy_cores()
    plan = {"cfg": cfg, "numpy_ns": numpy_ns, "rows": rows}
    if args.baseline is not None:
        plan["baseline"] = str(args.baseline.resolve())
        info["baseline"] = {"dir": plan["baseline"], "git_commit": git_commit(args.baseline)}
        for t in THREADS:
            log(f"\n== diffsde baseline (git {info['baseline']['git_commit']}), {t} thread(s) ==")
            out, err = run_worker("baseline", t, plan, args.quick)
            if err:
                log(f"  worker failed: {err}")
                res["skipped"].append({"lib": "diffsde_baseline", "threads": t, "reason": err})
                continue
            ms.extend(out["measurements"])
            info["baseline"].update(out.get("info") or {})
    for kind in ("torch", "jax"):
        if kind not in families:
            continue
        for t in THREADS:
            log(f"\n== {kind} worker, {t} thread(s) ==")
            out, err = run_worker(kind, t, plan, args.quick)
            if err:
                log(f"  worker failed: {err}")
                libs = ("torch", "torchsde") if kind == "torch" else ("diffrax_vbt", "diffrax_unsafe")
                for lib in libs:
                    res["skipped"].append({"lib": lib, "threads": t, "reason": err})
                continue
            ms.extend(out["measurements"])
            if out.get("errors"):
                log(f"  errors: {out['errors']}")
            res.setdefault("worker_info", {})[f"{kind}_{t}T"] = out.get("info")
            info["busy_cores_by_others"][f"after_{kind}_{t}T"] = busy_cores()

    log("\n== moment checks (final samples vs the exact target law, else vs diffsde's) ==")
    for r in ms:
        if r["status"] != "ok":
            continue
        ref = "numpy" if r["lib"] in OURS else "diffsde"
        ds_rec = find(ms, workload=r["workload"], lib=ref, elements=r["elements"], status="ok")
        ok, why = check(r["workload"], r["moments"], ds_rec["moments"] if ds_rec else None,
                        "the NumPy loop's" if ref == "numpy" else "diffsde's")
        r["check_ok"], r["check"] = ok, why
        mo = r["moments"]
        log(f"  {'ok ' if ok else 'BAD'} {r['workload']:14}{LIBS[r['lib']]:16}{r['threads']}T {r['elements']:>8.0e}: "
            f"mean {mo['mean']:+.4f} var {mo['var']:.4f}" + (f" radius {mo['radius']:.4f}" if "radius" in mo else "")
            + f"  [{why}]")
    tg = {w: targets(w) for w in WORKLOADS}
    log("  targets: " + "; ".join(f"{w}: " + ", ".join(f"{k} {v:.4f}" for k, v in d.items()) for w, d in tg.items()))
    res["targets"] = tg
    for r in ms:
        if r["status"] != "ok":
            res["skipped"].append({k: r.get(k) for k in ("workload", "lib", "threads", "elements", "steps",
                                                         "status", "reason")})

    elapsed = time.perf_counter() - t_start
    res["elapsed_seconds"] = elapsed
    info["loadavg_end"] = os.getloadavg()
    tables = build_tables(res, cfg)
    verdicts = evaluate_targets(res)
    skipped = {}
    for s in res["skipped"]:
        key = (s.get("lib"), s.get("reason"))
        skipped.setdefault(key, []).append(f"{s.get('workload', '')} {s.get('threads')}T "
                                           f"{(s.get('elements') or 0):.0e}")
    stamp = datetime.date.today().isoformat()
    suffix = "-quick" if args.quick else ""
    md = [f"# diffsde side by side ({stamp}{', --quick' if args.quick else ', --full'})", "",
          f"Machine: {info['cpu']}, {N_CORES} usable cores ({info['platform']}); git {info['git_commit']}"
          + (f" (baseline: git {info['baseline']['git_commit']}, {info['baseline']['dir']})"
             if "baseline" in info else "") + "; "
          f"total wall time {elapsed / 60:.1f} min. Cores kept busy by other processes (1 s samples between "
          "sections): " + ", ".join(f"{k} {v:.2f}" for k, v in info["busy_cores_by_others"].items()
                                     if v is not None) + ".", "",
          "Versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()) + f", Python {info['python']}.",
          "", (f"1-thread figures: every library pinned to core {ONE_CORE} (os.sched_setaffinity); "
               "unpinned, diffrax's single-thread XLA flags still use up to 2 cores." if ONE_CORE is not None
               else "1-thread figures: not pinned (no os.sched_setaffinity here)."),
          "", "Produced by `python benchmarks/compare.py" + (" --quick" if args.quick else " --full")
          + (" --baseline DIR" if args.baseline is not None else "") + "`; every measurement (median/min/max, moments, check) is in the JSON beside this file.", "",
          tables, "## Targets", "", verdicts, "", "## Skipped or not applicable", ""]
    for (lib, reason), where in skipped.items():
        md.append(f"- {LIBS.get(lib, lib)}: {reason} ({', '.join(where)})")
    for (w, lib), reason in NOT_APPLICABLE.items():
        if reason != "as above":
            md.append(f"- {LIBS[lib]}, {w}: {reason}")
    md_text = "\n".join(md) + "\n"
    log("\n" + md_text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    base = RESULTS / f"compare-{stamp}{suffix}"
    base.with_suffix(".md").write_text(md_text)
    for r in ms:
        r.pop("traceback", None) if r.get("status") == "ok" else None
    base.with_suffix(".json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    try:
        plot(res, base.with_suffix(".png"))
    except Exception as exc:  # noqa: BLE001
        log(f"plot failed: {type(exc).__name__}: {exc}")
    log(f"wrote {base.with_suffix('.md').relative_to(ROOT)}, .json, .png; total {elapsed:.0f} s")


if __name__ == "__main__":
    main()
