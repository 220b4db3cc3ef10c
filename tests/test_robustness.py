"""Threads, fork, leaks over 10^4 calls, and the dtype rules everywhere."""
import gc
import multiprocessing
import os
import sys
import threading

import numpy as np
import pytest

import diffsde as ds
from diffsde import _threads

VP = ds.VPSDE()
GM = ds.datasets.eight_gaussians()


def test_the_api_is_safe_from_several_python_threads():
    x = np.random.default_rng(0).standard_normal((30_000, 2))
    jobs = {
        "forward": lambda seed: ds.forward(VP, x, 20, rng=seed).x,
        "reverse": lambda seed: ds.reverse(VP, GM, x, 20, rng=seed).x,
        "callable": lambda seed: ds.reverse(VP, lambda v, t: -v, x[:500], 10, rng=seed).x,
        "normals": lambda seed: ds.standard_normal(200_000, rng=seed),
    }
    expected = {(name, seed): job(seed) for name, job in jobs.items() for seed in (1, 2)}
    results, errors = {}, []

    def work(name, seed):
        try:
            for _ in range(3):
                results[(name, seed)] = jobs[name](seed)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=key) for key in expected]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    for key, value in expected.items():
        np.testing.assert_array_equal(results[key], value)


def _child_run(queue):
    x = np.zeros((50_000, 2))
    queue.put(ds.forward(VP, x, 20, rng=3).x.sum())


def test_a_forked_child_runs_serially_instead_of_hanging():
    x = np.zeros((50_000, 2))
    ds.set_num_threads(2)
    try:
        parent = ds.forward(VP, x, 20, rng=3).x.sum()  # starts the OpenMP threads
    finally:
        ds.set_num_threads(None)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_run, args=(queue,))
    child.start()
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked child hung")
    assert child.exitcode == 0 and queue.get(timeout=5) == parent


def _rss_bytes():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_three_thousand_calls_of_each_entry_point_leak_nothing():
    """27,000 calls after a warm-up: the reference counts must not move, and
    RSS may not grow by 4 MiB, which a leak of 160 bytes per call (less than
    the smallest array a call returns) would exceed."""
    x = np.random.default_rng(1).standard_normal((8, 2))
    table = ds.StepTable.affine(np.full(3, 0.9), 0.1, 0.1)
    score = lambda v, t: -v  # noqa: E731
    bad_score = lambda v, t: v[:1]  # noqa: E731
    calls = [
        lambda: ds.forward(VP, x, 3, rng=0),
        lambda: ds.reverse(VP, GM, x, 3, rng=0),
        lambda: ds.reverse(VP, score, x, 3, rng=0),
        lambda: ds.run_steps(x, table, score=ds.LinearScore(), rng=0),
        lambda: ds.standard_normal(16, rng=0),
        lambda: GM.sample(4, rng=0),
    ]
    failing = [
        lambda: ds.reverse(VP, bad_score, x, 3),
        lambda: ds.forward(VP, x, 0),
        lambda: ds.run_steps(x, table),
    ]

    def run_all():
        for call in calls:
            call()
        for call in failing:
            try:
                call()
            except (ValueError, TypeError):
                pass

    for _ in range(500):
        run_all()
    gc.collect()  # tracebacks of the failing calls sit in collectable cycles
    refs = [sys.getrefcount(o) for o in (x, table, score, bad_score, GM)]
    before = _rss_bytes()
    for _ in range(3_000):
        run_all()
    gc.collect()
    grown = _rss_bytes() - before
    assert [sys.getrefcount(o) for o in (x, table, score, bad_score, GM)] == refs
    if "libasan" not in os.environ.get("LD_PRELOAD", ""):  # ASan's quarantine holds freed memory
        assert grown < 4 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over 27,000 calls"


# longdouble is float64 on some platforms (then it is a supported dtype)
BAD_DTYPES = [np.float16, np.complex128, object] + (
    [np.longdouble] if np.dtype(np.longdouble) != np.dtype(np.float64) else [])


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("call", [
    lambda x: ds.forward(VP, x, 2),
    lambda x: ds.reverse(VP, GM, x, 2),
    lambda x: ds.run_steps(x, ds.StepTable.affine([1.0])),
    lambda x: VP.perturb(x, 0.5),
], ids=["forward", "reverse", "run_steps", "perturb"])
def test_dtype_rules_everywhere(call, dtype):
    with pytest.raises(TypeError, match="float32 or float64"):
        call(np.zeros((4, 2), dtype=dtype))


def test_bool_and_int_inputs_become_float64_everywhere():
    for x in (np.ones((4, 2), dtype=bool), np.ones((4, 2), dtype=np.int16)):
        assert ds.forward(VP, x, 2, rng=0).x.dtype == np.float64
        assert ds.reverse(VP, GM, x, 2, rng=0).x.dtype == np.float64
        assert VP.perturb(x, 0.5, rng=0).dtype == np.float64


def test_fork_flag_only_after_threads(monkeypatch):
    monkeypatch.setattr(_threads, "_used_threads", False)
    monkeypatch.setattr(_threads, "_forked_after_threads", False)
    _threads._after_fork_in_child()
    assert not _threads._forked_after_threads
    monkeypatch.setattr(_threads, "_used_threads", True)
    _threads._after_fork_in_child()
    assert _threads.threads_for(10**7, 100) == 1
