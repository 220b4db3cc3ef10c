#!/usr/bin/env python
"""Benchmark of diffsde's C step driver (no score) against a NumPy loop.

Usage::

    python benchmarks/engine.py [--quick] [--json]

Prints ns per element-step (best of 3, ``time.perf_counter``) for

* the driver: ``ds.run_steps(x, ds.StepTable.affine(a, 0.0, c), rng=0)`` with
  ``a = 0.999``, ``c = 0.01`` per step, 1 and 2 threads, float32/float64,
  10^3 .. 10^7 elements (``x`` of shape ``(elements,)``);
* a NumPy loop doing the same update per step:
  ``rng.standard_normal(out=z, dtype=dt); x *= a; z *= c; x += z``
  (``numpy.random.Generator``, PCG64), single-threaded;
* references: ``ds.standard_normal(out=z, rng=k, dtype=dt)`` (ns per normal),
  the private kernel ``diffsde._core.fill_normal`` alone (no allocation or
  copy), NumPy's ``Generator.standard_normal(out=z, dtype=dt)``, and
  ``np.copyto`` (memory bandwidth);
* ratios NumPy-loop time / driver time;
* a 1-vs-2-thread sweep from 10^3 to 10^6 elements for setting
  ``diffsde._threads.SERIAL_BELOW``, for long runs and for one-step calls.

``diffsde._threads.SERIAL_BELOW`` is set to 0 for the whole benchmark (and
restored at the end) so that "2 threads" really asks the driver for two
threads at every size. The driver still cannot use more threads than it has
blocks of ``diffsde._engine.BLOCK_ELEMENTS`` elements, so the tables print the
block count.

Measurements of one table row are calibrated first, then timed round-robin
(best of N), so a slow spell of the machine hits them alike. A probe at the
start and the end measures how much a second thread can help at all (on a
shared or virtual machine the second CPU may be busy): read the thread
columns with it.

``--quick`` runs a reduced grid in well under 30 s. ``--json`` writes everything to ``benchmarks/results/engine-<date>.json``
(``engine-<date>-quick.json`` with ``--quick``). This file is a benchmark,
never run by the tests.
"""
import argparse
import datetime
import gc
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

import diffsde as ds  # noqa: E402
import diffsde._engine as ds_engine  # noqa: E402
import diffsde._threads as ds_threads  # noqa: E402
from diffsde import _core  # noqa: E402

A, C = 0.999, 0.01
DTYPES = (np.float64, np.float32)
THREADS = (1, 2)

FULL = dict(
    sizes=[10**3, 10**4, 10**5, 10**6, 10**7],
    driver_target=1e8,      # element-steps per driver / NumPy-loop measurement
    ref_target=1e7,         # elements per reference measurement
    min_time=0.2,           # seconds: every measurement is made at least this long
    repeats=3,
    sweep_sizes=[1000, 2000, 5000, 10**4, 2 * 10**4, 5 * 10**4,
                 10**5, 2 * 10**5, 5 * 10**5, 10**6],
    sweep_dtypes=DTYPES,
    sweep_target=1e7,
    sweep_min_time=0.2,
    sweep_repeats=4,
    probe_samples=15,
    short_min_time=0.1,
    diag_sizes=[10**5, 10**7],
    diag_target=1.5e7,
)
QUICK = dict(
    sizes=[10**4, 10**6],
    driver_target=1e7,
    ref_target=5e6,
    min_time=0.03,
    repeats=3,
    sweep_sizes=[2000, 5000, 10**4, 5 * 10**4, 2 * 10**5],
    sweep_dtypes=(np.float64,),
    sweep_target=2e6,
    sweep_min_time=0.02,
    sweep_repeats=3,
    probe_samples=5,
    short_min_time=0.02,
    diag_sizes=[10**6],
    diag_target=5e6,
)

# Two threads "beat" one only when faster by more than this fraction, so
# timing noise between two effectively serial runs is not a crossover.
BEAT_MARGIN = 0.03


# ---- machine -----------------------------------------------------------------

def _read(path):
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def machine_info():
    cpu = None
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    caches = {}
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    if base.is_dir():
        for idx in sorted(base.glob("index*")):
            level, kind, size = (_read(idx / name) for name in ("level", "type", "size"))
            if level and size and kind != "Instruction":
                caches[f"L{level}{'d' if kind == 'Data' else ''}"] = size
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "csrc", "diffsde"],
                               cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = None, ""
    so = Path(_core.__file__)
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "caches_per_core": caches,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "diffsde": ds.__version__,
        "diffsde_core": str(so),
        "diffsde_core_built": datetime.datetime.fromtimestamp(so.stat().st_mtime).isoformat(timespec="seconds"),
        "openmp": bool(_core.openmp()),
        "git_commit": commit,
        "git_dirty_sources": bool(dirty),
        "serial_below_shipped": ds_threads.SERIAL_BELOW,
        "block_elements": ds_engine.BLOCK_ELEMENTS,
        "loadavg_start": os.getloadavg(),
    }


# ---- timing ------------------------------------------------------------------

def calibrate(make, unit, target, min_time):
    """Choose ``n`` for ``make(n)()``, which does ``n * unit`` units of work.

    ``n`` starts at ``target / unit`` (at least 1); two warm-up calls with a
    tenth of that (the second timed) estimate the speed, and ``n`` grows until
    one call should take at least ``min_time``. Returns (n, make(n)).
    """
    n = max(1, round(target / unit))
    n_warm = max(1, n // 10)
    warm_fn = make(n_warm)
    warm_fn()  # first touch, thread start-up
    t0 = time.perf_counter()
    warm_fn()
    estimate = (time.perf_counter() - t0) * n / n_warm
    if estimate < min_time:
        n = max(n, math.ceil(n * 1.1 * min_time / max(estimate, 1e-9)))
    return n, make(n)


def timed_group(specs, repeats):
    """Calibrate every ``name: (make, unit, target, min_time)`` of ``specs``,
    then time them round-robin ``repeats`` times (so a slow spell of the
    machine hits all of them alike) with the GC off. Returns ``name: {"n",
    "seconds" (best), "all_seconds"}``.
    """
    fns, out = {}, {}
    for name, (make, unit, target, min_time) in specs.items():
        n, fns[name] = calibrate(make, unit, target, min_time)
        out[name] = {"n": n, "seconds": None, "all_seconds": []}
    for _ in range(repeats):
        for name, fn in fns.items():
            gc.collect()
            gc.disable()
            try:
                t0 = time.perf_counter()
                fn()
                out[name]["all_seconds"].append(time.perf_counter() - t0)
            finally:
                gc.enable()
    for rec in out.values():
        rec["seconds"] = min(rec["all_seconds"])
    return out


def set_threads(n):
    ds.set_num_threads(n)


def parallel_probe(samples):
    """1-thread / 2-thread time of ``_core.fill_normal`` on 2**20 float64
    normals (16 chunks), ``samples`` times: ~2 on two free cores, ~1 or less
    when the second CPU is busy (other processes, or a host that shares it)."""
    z = np.empty(2**20)
    speedups = []
    for i in range(samples):
        t = []
        for threads in THREADS:
            t0 = time.perf_counter()
            for k in range(3):
                _core.fill_normal(z, 99, 1, k, 0, threads)
            t.append(time.perf_counter() - t0)
        speedups.append(t[0] / t[1])
    return speedups


def probe_summary(speedups):
    s = sorted(speedups)
    return {"samples": speedups, "median": s[len(s) // 2], "min": s[0], "max": s[-1],
            "fraction_below_1.3": sum(v < 1.3 for v in s) / len(s)}


# ---- workloads ---------------------------------------------------------------

def initial_state(elements, dtype):
    return np.random.default_rng(12345).standard_normal(elements).astype(dtype)


def driver_fn(x, threads, **kwargs):
    def make(steps):
        table = ds.StepTable.affine(np.full(steps, A), 0.0, np.full(steps, C))

        def run():
            set_threads(threads)
            ds.run_steps(x, table, rng=0, **kwargs)
        return run
    return make


def driver_calls_fn(x, threads, steps):
    """Repeated calls of a short run (``steps`` steps each), each with its own
    seed: repeating the same few thousand normals lets the branch predictor
    learn libm's log/sin/cos branches and flatters small sizes (seen here:
    ~20% faster at 10^4 normals)."""
    table = ds.StepTable.affine(np.full(steps, A), 0.0, np.full(steps, C))

    def make(calls):
        def run():
            set_threads(threads)
            for k in range(calls):
                ds.run_steps(x, table, rng=k)
        return run
    return make


def numpy_loop_fn(x0, dtype):
    x = x0.copy()
    z = np.empty_like(x)
    rng = np.random.Generator(np.random.PCG64(0))

    def make(steps):
        a = np.full(steps, A).tolist()  # Python floats: computed in x's dtype
        c = np.full(steps, C).tolist()

        def run():
            xx, zz, normal = x, z, rng.standard_normal  # locals; updates stay in place
            for k in range(steps):
                normal(out=zz, dtype=dtype)
                xx *= a[k]
                zz *= c[k]
                xx += zz
        return run
    return make


def ds_normal_fn(z, threads):
    def make(calls):
        def run():
            set_threads(threads)
            for k in range(calls):
                ds.standard_normal(out=z, rng=k, dtype=z.dtype)
        return run
    return make


def core_normal_fn(z, threads):
    def make(calls):
        def run():
            for k in range(calls):
                _core.fill_normal(z, 0x1234ABCD, 1, k, 0, threads)
        return run
    return make


def np_normal_fn(z):
    rng = np.random.Generator(np.random.PCG64(0))

    def make(calls):
        def run():
            for _ in range(calls):
                rng.standard_normal(out=z, dtype=z.dtype)
        return run
    return make


def copy_fn(dst, src):
    def make(calls):
        def run():
            for _ in range(calls):
                np.copyto(dst, src)
        return run
    return make


def n_blocks(elements):
    return -(-elements // ds_engine.BLOCK_ELEMENTS)


def ns(seconds, units):
    return seconds / units * 1e9


# ---- sections ----------------------------------------------------------------

def log(msg=""):
    print(msg, flush=True)


def bench_driver(cfg, results):
    log("== diffsde driver vs NumPy loop: ns per element-step (best of %d, interleaved) ==" % cfg["repeats"])
    log("   2T = set_num_threads(2) with SERIAL_BELOW patched to 0; blocks = "
        f"ceil(elements / {ds_engine.BLOCK_ELEMENTS}) caps the threads used")
    log("   ratio = NumPy-loop time / diffsde time (> 1: diffsde is faster)")
    log(f"{'dtype':8}{'elements':>10}{'blocks':>7}{'steps':>8}{'ds 1T':>9}{'ds 2T':>9}"
        f"{'numpy':>9}{'np/ds 1T':>10}{'np/ds 2T':>10}{'2T/1T':>8}")
    for dtype in DTYPES:
        name = np.dtype(dtype).name
        for elements in cfg["sizes"]:
            x = initial_state(elements, dtype)
            tgt, mt = cfg["driver_target"], cfg["min_time"]
            specs = {f"ds_{t}T": (driver_fn(x, t), elements, tgt, mt) for t in THREADS}
            specs["numpy_loop"] = (numpy_loop_fn(x, dtype), elements, tgt, mt)
            row = {"dtype": name, "elements": elements, "blocks": n_blocks(elements)}
            for key, rec in timed_group(specs, cfg["repeats"]).items():
                rec["steps"] = rec.pop("n")
                rec["ns_per_element_step"] = ns(rec["seconds"], rec["steps"] * elements)
                row[key] = rec
            d1, d2, npl = (row[k]["ns_per_element_step"] for k in ("ds_1T", "ds_2T", "numpy_loop"))
            row["ratio_numpy_over_ds_1T"] = npl / d1
            row["ratio_numpy_over_ds_2T"] = npl / d2
            row["speedup_2T_over_1T"] = d1 / d2
            results["driver"].append(row)
            log(f"{name:8}{elements:>10}{row['blocks']:>7}{row['ds_1T']['steps']:>8}{d1:>9.2f}{d2:>9.2f}"
                f"{npl:>9.2f}{npl / d1:>10.2f}{npl / d2:>10.2f}{d1 / d2:>8.2f}")
            del x, specs
    log()


def bench_references(cfg, results):
    log("== references: ns per element (best of %d, interleaved) ==" % cfg["repeats"])
    log("   ds.sn = ds.standard_normal(out=z, rng=k, dtype=...), call k, per normal; kern = its C kernel")
    log("   _core.fill_normal alone (private; no allocation, no copy; 2T needs > 65536 normals);")
    log("   np.sn = Generator(PCG64).standard_normal(out=z, dtype=...); copy = np.copyto(dst, src)")
    log("   (GB/s counts read + write)")
    log(f"{'dtype':8}{'elements':>10}{'ds.sn 1T':>10}{'ds.sn 2T':>10}{'kern 1T':>9}{'kern 2T':>9}"
        f"{'np.sn':>8}{'copy':>8}{'copy GB/s':>11}")
    for dtype in DTYPES:
        name = np.dtype(dtype).name
        item = np.dtype(dtype).itemsize
        for elements in cfg["sizes"]:
            z = np.empty(elements, dtype)
            src = initial_state(elements, dtype)
            dst = np.empty_like(src)
            tgt, mt = cfg["ref_target"], cfg["min_time"]
            specs = {}
            for t in THREADS:
                specs[f"ds_standard_normal_{t}T"] = (ds_normal_fn(z, t), elements, tgt, mt)
                specs[f"core_fill_normal_{t}T"] = (core_normal_fn(z, t), elements, tgt, mt)
            specs["numpy_standard_normal"] = (np_normal_fn(z), elements, tgt, mt)
            specs["copyto"] = (copy_fn(dst, src), elements, tgt, mt)
            row = {"dtype": name, "elements": elements}
            for key, rec in timed_group(specs, cfg["repeats"]).items():
                rec["calls"] = rec.pop("n")
                rec["ns_per_element"] = ns(rec["seconds"], rec["calls"] * elements)
                row[key] = rec
            copy_ns = row["copyto"]["ns_per_element"]
            row["copyto"]["GB_per_s"] = 2 * item / copy_ns
            results["references"].append(row)
            v = lambda k: row[k]["ns_per_element"]  # noqa: E731
            log(f"{name:8}{elements:>10}{v('ds_standard_normal_1T'):>10.2f}{v('ds_standard_normal_2T'):>10.2f}"
                f"{v('core_fill_normal_1T'):>9.2f}{v('core_fill_normal_2T'):>9.2f}"
                f"{v('numpy_standard_normal'):>8.2f}{copy_ns:>8.3f}{2 * item / copy_ns:>11.1f}")
            del z, src, dst, specs
    log()


def bench_diagnostics(cfg, results):
    """Where the driver's time goes: the same run without the per-row
    finiteness scan and without the input copy and snapshots."""
    log("== driver diagnostics, 1 thread: ns per element-step (best of %d, interleaved) ==" % cfg["repeats"])
    log("   spec = run_steps(x, table, rng=0) as above; no-check = nonfinite='ignore';")
    log("   lean = nonfinite='ignore', out=<preallocated>, save=[] (no copy of x, no snapshots);")
    log("   kern = _core.fill_normal alone, ns per normal, for comparison")
    log(f"{'dtype':8}{'elements':>10}{'steps':>8}{'spec':>9}{'no-check':>10}{'lean':>9}{'kern':>9}")
    for dtype in DTYPES:
        name = np.dtype(dtype).name
        for elements in cfg["diag_sizes"]:
            x = initial_state(elements, dtype)
            buf = np.empty_like(x)
            tgt, mt = cfg["diag_target"], cfg["min_time"]
            variants = {"spec": {}, "no_check": {"nonfinite": "ignore"},
                        "lean": {"nonfinite": "ignore", "out": buf, "save": np.zeros(0, np.int64)}}
            specs = {key: (driver_fn(x, 1, **kw), elements, tgt, mt) for key, kw in variants.items()}
            specs["kernel"] = (core_normal_fn(buf.copy(), 1), elements, tgt, mt)
            row = {"dtype": name, "elements": elements}
            for key, rec in timed_group(specs, cfg["repeats"]).items():
                rec["steps" if key != "kernel" else "calls"] = rec.pop("n")
                rec["ns_per_element_step"] = ns(rec["seconds"], rec.get("steps", rec.get("calls")) * elements)
                row[key] = rec
            results["diagnostics"].append(row)
            g = lambda k: row[k]["ns_per_element_step"]  # noqa: E731
            log(f"{name:8}{elements:>10}{row['spec']['steps']:>8}{g('spec'):>9.2f}"
                f"{g('no_check'):>10.2f}{g('lean'):>9.2f}{g('kernel'):>9.2f}")
            del x, buf, specs
    log()


def crossover(points):
    """Smallest size where 2 threads beat 1 (by BEAT_MARGIN), and the smallest
    size from which they beat 1 at every larger measured size."""
    beats = [(p["elements"], p["speedup_2T_over_1T"] > 1 + BEAT_MARGIN) for p in points]
    first = next((n for n, b in beats if b), None)
    stable = None
    for n, b in reversed(beats):
        if not b:
            break
        stable = n
    return first, stable


def bench_threads(cfg, results):
    reps = cfg["sweep_repeats"]
    log(f"== 1 vs 2 threads (SERIAL_BELOW patched to 0): ns per element-step (best of {reps}, interleaved) ==")
    log(f"   long = one call of ~{cfg['sweep_target']:.0e} element-steps (at least "
        f"{cfg['sweep_min_time']} s); 1-step = repeated calls of a 1-step run_steps (rng=k),")
    log(f"   Python overhead included. 2 threads 'win' when faster by > {BEAT_MARGIN:.0%}")
    for dtype in cfg["sweep_dtypes"]:
        name = np.dtype(dtype).name
        log(f"-- {name}")
        log(f"{'elements':>10}{'blocks':>7}{'long 1T':>9}{'long 2T':>9}{'2T/1T':>7}"
            f"{'1-step 1T':>11}{'1-step 2T':>11}{'2T/1T':>7}{'us/call 1T':>12}")
        long_pts, short_pts = [], []
        for elements in cfg["sweep_sizes"]:
            x = initial_state(elements, dtype)
            specs = {}
            for t in THREADS:
                specs[f"long_{t}T"] = (driver_fn(x, t), elements, cfg["sweep_target"], cfg["sweep_min_time"])
                specs[f"short_{t}T"] = (driver_calls_fn(x, t, 1), elements, 0, cfg["short_min_time"])
            timed = timed_group(specs, reps)
            lp = {"elements": elements, "blocks": n_blocks(elements)}
            sp = {"elements": elements, "blocks": n_blocks(elements)}
            for t in THREADS:
                rec = timed[f"long_{t}T"]
                rec["steps"] = rec.pop("n")
                rec["ns_per_element_step"] = ns(rec["seconds"], rec["steps"] * elements)
                lp[f"{t}T"] = rec
                rec = timed[f"short_{t}T"]
                rec["calls"] = rec.pop("n")
                rec["us_per_call"] = rec["seconds"] / rec["calls"] * 1e6
                rec["ns_per_element_step"] = ns(rec["seconds"], rec["calls"] * elements)
                sp[f"{t}T"] = rec
            for p in (lp, sp):
                p["speedup_2T_over_1T"] = p["1T"]["ns_per_element_step"] / p["2T"]["ns_per_element_step"]
            long_pts.append(lp)
            short_pts.append(sp)
            g = lambda p, t: p[t]["ns_per_element_step"]  # noqa: E731
            log(f"{elements:>10}{lp['blocks']:>7}{g(lp, '1T'):>9.2f}{g(lp, '2T'):>9.2f}"
                f"{lp['speedup_2T_over_1T']:>7.2f}{g(sp, '1T'):>11.2f}{g(sp, '2T'):>11.2f}"
                f"{sp['speedup_2T_over_1T']:>7.2f}{sp['1T']['us_per_call']:>12.1f}")
            del x, specs
        out = {"dtype": name, "long": long_pts, "one_step": short_pts}
        for key, pts in (("long", long_pts), ("one_step", short_pts)):
            first, stable = crossover(pts)
            out[f"crossover_{key}"] = {"first": first, "stable": stable}
            log(f"   crossover ({key}): 2 threads first win at {first} elements; "
                f"win at every measured size from {stable}")
        results["threads"].append(out)
    log()


def log_probe(when, probe):
    log(f"parallel probe ({when}): 1T/2T time of _core.fill_normal on 2**20 normals, "
        f"{len(probe['samples'])} samples: median {probe['median']:.2f}, range "
        f"{probe['min']:.2f}..{probe['max']:.2f}; {probe['fraction_below_1.3']:.0%} below 1.3 "
        "(2 free cores give ~2)")
    log()


# ---- main --------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="reduced grid (< 30 s)")
    parser.add_argument("--json", action="store_true",
                        help="also write benchmarks/results/engine-<date>.json")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL

    info = machine_info()
    log("diffsde engine benchmark" + (" (--quick)" if args.quick else ""))
    log(f"CPU: {info['cpu']}; {info['cpus_usable']} usable CPUs (cpu_count {info['cpu_count']}); "
        f"caches per core {info['caches_per_core']}")
    log(f"Python {info['python']}, numpy {info['numpy']}, diffsde {info['diffsde']} "
        f"(git {info['git_commit']}{', sources modified' if info['git_dirty_sources'] else ''}; "
        f"_core built {info['diffsde_core_built']}; OpenMP {info['openmp']})")
    log(f"{info['platform']}; load average at start {info['loadavg_start']}")
    log(f"shipped SERIAL_BELOW = {info['serial_below_shipped']}, BLOCK_ELEMENTS = {info['block_elements']}")
    log()

    results = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "quick": args.quick,
               "machine": info, "config": {k: (list(map(lambda d: np.dtype(d).name, v))
                                               if k == "sweep_dtypes" else v) for k, v in cfg.items()},
               "a": A, "c": C, "driver": [], "references": [], "diagnostics": [], "threads": []}

    t_start = time.perf_counter()
    probe = probe_summary(parallel_probe(cfg["probe_samples"]))
    results["parallel_probe_start"] = probe
    log_probe("start", probe)
    saved_serial_below = ds_threads.SERIAL_BELOW
    saved_serial_work = ds_threads.SERIAL_BELOW_WORK
    ds_threads.SERIAL_BELOW_WORK = 0
    saved_threads = ds_threads._requested
    ds_threads.SERIAL_BELOW = 0
    try:
        for section in (bench_driver, bench_references, bench_diagnostics, bench_threads):
            t0 = time.perf_counter()
            section(cfg, results)
            results.setdefault("section_seconds", {})[section.__name__] = time.perf_counter() - t0
    finally:
        ds_threads.SERIAL_BELOW = saved_serial_below
        ds_threads.SERIAL_BELOW_WORK = saved_serial_work
        ds.set_num_threads(saved_threads)

    probe = probe_summary(parallel_probe(cfg["probe_samples"]))
    results["parallel_probe_end"] = probe
    log_probe("end", probe)
    elapsed = time.perf_counter() - t_start
    info["loadavg_end"] = os.getloadavg()
    results["elapsed_seconds"] = elapsed
    log(f"total {elapsed:.0f} s; load average at end {info['loadavg_end']}")
    if args.json:
        out_dir = ROOT / "benchmarks" / "results"
        out_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.date.today().isoformat()
        path = out_dir / f"engine-{stamp}{'-quick' if args.quick else ''}.json"
        path.write_text(json.dumps(results, indent=1) + "\n")
        log(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
