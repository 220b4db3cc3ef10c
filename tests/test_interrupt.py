"""Ctrl-C during a long run: KeyboardInterrupt promptly, nothing broken."""
import signal
import time

import numpy as np
import pytest

import diffsde as ds

pytestmark = pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs POSIX interval timers")

DELAY = 0.3
LATENCY_LIMIT = 0.5


def interrupted_after(delay, call):
    """Seconds from a SIGINT-like alarm to the KeyboardInterrupt out of call()."""
    previous = signal.signal(signal.SIGALRM, signal.default_int_handler)
    start = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, delay)
    try:
        call()
    except KeyboardInterrupt:
        return time.perf_counter() - start - delay
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    pytest.fail("the run finished before the interrupt; make it longer")


@pytest.mark.parametrize("which", ["none", "linear", "python"])
@pytest.mark.parametrize("threads", [1, 2])
def test_interrupt_is_prompt_and_the_next_call_works(which, threads):
    ds.set_num_threads(threads)
    try:
        x = np.random.default_rng(0).standard_normal((50_000, 4))
        steps = 50_000  # minutes of work if nothing stopped it
        score = {"none": None, "linear": ds.LinearScore(0.0, 1.0), "python": lambda v, t: -v}[which]
        table = ds.StepTable.affine(np.full(steps, 0.999), 0.0 if score is None else 1e-3, 0.01)
        x_before = x.copy()
        latency = interrupted_after(DELAY, lambda: ds.run_steps(x, table, score=score, rng=1))
        assert latency < LATENCY_LIMIT
        np.testing.assert_array_equal(x, x_before)
        short = ds.StepTable.affine(np.full(5, 0.9), 0.0 if score is None else 0.1, 0.1)
        again = ds.run_steps(x[:100], short, score=score, rng=2).x
        fresh = ds.run_steps(x[:100].copy(), short, score=score, rng=2).x
        np.testing.assert_array_equal(again, fresh)
    finally:
        ds.set_num_threads(None)


def test_interrupt_during_standard_normal():
    latency = interrupted_after(0.1, lambda: ds.standard_normal(150_000_000, rng=0, dtype=np.float32))
    assert latency < LATENCY_LIMIT


def test_interrupt_inside_one_long_empirical_score_evaluation():
    """10^4 data points x 2 x 10^5 rows: a single step's score is seconds of
    work, and the C score itself re-takes the GIL between passes over points."""
    data = ds.EmpiricalData(np.random.default_rng(1).standard_normal((10_000, 2)))
    x = np.random.default_rng(2).standard_normal((200_000, 2))
    table = ds.StepTable.affine([1.0, 1.0], 1e-3, 0.0, t=0.5, m=0.5, sd=0.8)
    latency = interrupted_after(DELAY, lambda: ds.run_steps(x, table, score=data))
    assert latency < LATENCY_LIMIT
