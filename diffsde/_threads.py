"""How many threads a run uses.

Precedence: ``set_num_threads(n)`` > the ``DIFFSDE_NUM_THREADS`` environment
variable > the number of CPUs this process may run on. A run uses one thread
when starting a second costs more than it saves: on fewer than
``SERIAL_BELOW`` state elements, or on fewer than ``SERIAL_BELOW_WORK``
element-steps in all (measured with benchmarks/engine.py on 2 cores: long
runs gain from 5,000 elements, one-step calls from 50,000-100,000). Results
never depend on the thread count.

After ``os.fork()`` in a process where diffsde has run threads (the default
"fork" start method of multiprocessing on Linux), the child runs serially:
GNU OpenMP cannot restart its thread pool in a forked child, and a parallel
region there would hang. Results are the same; for threads in worker
processes use the "spawn" or "forkserver" start method.

A request may be any int in [1, 2**31 - 1] (the C int that carries it); a
run starts at most 4 threads per processor (and no more than OpenMP's thread
limit), since more only cost memory and time and never change a result.
"""
import os

from . import _core
from ._validation import integer

#: Below this many state elements a run is serial.
SERIAL_BELOW = 5000
#: Below this many element-steps (elements x table rows) a run is serial.
SERIAL_BELOW_WORK = 100_000

#: The largest thread count a request may name (C's int).
MAX_THREADS = 2**31 - 1

_requested = None
_used_threads = False
_forked_after_threads = False


def _after_fork_in_child():
    global _forked_after_threads
    _forked_after_threads = _forked_after_threads or _used_threads


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def set_num_threads(n):
    """Set the number of threads diffsde uses; ``None`` restores the default.

    Parameters
    ----------
    n : int in [1, 2**31 - 1] or None
        Runs start at most 4 threads per processor, whatever ``n`` is.

    Returns
    -------
    int
        The previous setting's effective value.
    """
    global _requested
    previous = get_num_threads()
    _requested = integer(n, "n", 1, MAX_THREADS, "2**31 - 1", none=True)
    return previous


def get_num_threads():
    """The number of threads a large run uses (see module docstring)."""
    if _requested is not None:
        return _requested
    env = os.environ.get("DIFFSDE_NUM_THREADS")
    if env is not None and env.strip():
        try:
            n = int(env)
        except ValueError:
            n = 0
        if not 1 <= n <= MAX_THREADS:
            raise ValueError(f"DIFFSDE_NUM_THREADS must be an int in [1, 2**31 - 1]; got {env!r}")
        return n
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_for(n_elements, n_steps=1):
    """Threads for ``n_steps`` steps over ``n_elements`` state elements."""
    global _used_threads
    if (not _core.openmp() or _forked_after_threads or n_elements < SERIAL_BELOW
            or n_elements * n_steps < SERIAL_BELOW_WORK):
        return 1
    n = get_num_threads()
    _used_threads = _used_threads or n > 1
    return n
