"""How many threads a run uses.

Precedence: ``set_num_threads(n)`` > the ``DIFFSDE_NUM_THREADS`` environment
variable > the number of CPUs this process may run on. Runs on fewer than
``SERIAL_BELOW`` elements use one thread, where starting a second costs more
than it saves (measured with benchmarks/engine.py). Results never depend on
the thread count.
"""
import operator
import os

from . import _core

#: Below this many state elements a run is serial.
SERIAL_BELOW = 1 << 14

_requested = None


def set_num_threads(n):
    """Set the number of threads diffsde uses; ``None`` restores the default.

    Parameters
    ----------
    n : int >= 1 or None

    Returns
    -------
    int
        The previous setting's effective value.
    """
    global _requested
    previous = get_num_threads()
    if n is not None:
        if isinstance(n, bool):
            raise TypeError(f"n must be an int >= 1 or None; got {n!r}")
        try:
            n = operator.index(n)
        except TypeError:
            raise TypeError(f"n must be an int >= 1 or None; got {n!r}") from None
        if n < 1:
            raise ValueError(f"n must be an int >= 1 or None; got {n}")
    _requested = n
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
        if n < 1:
            raise ValueError(f"DIFFSDE_NUM_THREADS must be an int >= 1; got {env!r}")
        return n
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_for(n_elements):
    """Threads for a run over ``n_elements`` state elements."""
    if not _core.openmp() or n_elements < SERIAL_BELOW:
        return 1
    return get_num_threads()
