"""What code outside the processes may assume about a process.

A process is anything with a time span ``T`` and ``marginal_coefficients``
giving (m, s) of x_t = m x_0 + s z. For an SDE (:class:`~diffsde.AffineSDE`
and its subclasses) that method takes a time t in [0, T]; a chain
(:class:`~diffsde.DDPM`, :class:`~diffsde.SMLD`) says so, with ``"chain"``
in its ``capabilities`` (the capability the chain methods need), also has
an int ``N``, and takes a grid index i, with grid times t_i = i T / N. An
int attribute ``N`` alone does not make a process a chain. Scores and
adapters use only this, never the classes, so they import no process
module: the processes may then use the scores without an import cycle.
"""
import numpy as np

from ._validation import shown


def check_process(process, name="process"):
    """``process`` if it follows the protocol, else TypeError."""
    if not (callable(getattr(process, "marginal_coefficients", None)) and hasattr(process, "T")):
        raise TypeError(f"{name} must be an SDE or a chain (with T and marginal_coefficients); "
                        f"got {type(process).__name__}")
    return process


def is_chain(process):
    """Whether ``process`` is a chain: ``"chain"`` is in its ``capabilities``
    (a frozenset, as ``ds.methods.available`` reads it)."""
    caps = getattr(process, "capabilities", None)
    return isinstance(caps, frozenset) and "chain" in caps


def scalar_time(t, process):
    """t as a float in [0, T] (one time for the whole batch)."""
    arr = None if isinstance(t, str) else np.asarray(t)
    if arr is None or arr.ndim != 0 or arr.dtype.kind not in "iuf":
        raise TypeError(f"t must be a real number (one time for the whole batch); got {shown(t)}")
    value = float(arr)
    if not 0 <= value <= process.T * (1 + 1e-12):
        raise ValueError(f"t must lie in [0, T] = [0, {process.T:g}]; got {value!r}")
    return min(value, process.T)


def coefficients_at_time(process, t):
    """(m, s) of ``process`` at time t as floats; a chain at the grid index
    i = round(t N / T) of the grid time t."""
    t = scalar_time(t, process)
    if is_chain(process):
        m, s = process.marginal_coefficients(int(round(t * process.N / process.T)))
    else:
        m, s = process.marginal_coefficients(t)
    return float(m), float(s)
