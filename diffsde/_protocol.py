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
    """(m, s) of ``process`` at time t as floats; a chain's by
    :func:`chain_coefficients`."""
    t = scalar_time(t, process)
    if is_chain(process):
        return chain_coefficients(process, t)
    m, s = process.marginal_coefficients(t)
    return float(m), float(s)


def chain_coefficients(chain, t):
    r"""(m, s) of a chain at the time t in [0, T], as floats.

    At a grid time t_i = i T / N (to 1e-9 of a step) they are index i's.
    Between two grid indices, i < t N / T < i + 1 with i >= 1, they are the
    marginal the sigma-space samplers evaluate the score with there (a
    midpoint, a churned level): sigma = s/m with log sigma linear in t
    between the two indices (k-diffusion's ``DiscreteSchedule.t_to_sigma``,
    the inverse of the samplers' time, linear in log sigma), and the chain
    family's marginal at that sigma,

    .. math:: m = 1/\sqrt{1 + \sigma^2},\ s = \sigma m \ \text{(DDPM)}, \qquad
              m = 1,\ s = \sigma \ \text{(SMLD)}.

    Below t_1 (sigma_0 = 0, where log sigma has no such rule) and for a
    chain of another family: the nearest grid index.
    """
    x = t * chain.N / chain.T
    i = int(round(x))
    caps = getattr(chain, "capabilities", frozenset())
    family = "ddpm_chain" in caps or "smld_chain" in caps
    if abs(x - i) <= 1e-9 or x < 1 or not family:
        m, s = chain.marginal_coefficients(i)
        return float(m), float(s)
    lo = min(int(x), chain.N - 1)
    w = x - lo
    m, s = chain.marginal_coefficients(np.array([lo, lo + 1]))
    log_sig = np.log(np.asarray(s, np.float64) / np.asarray(m, np.float64))
    sigma = float(np.exp((1.0 - w) * log_sig[0] + w * log_sig[1]))
    m, s = chain_marginal_at_sigma(sigma, ddpm="ddpm_chain" in caps)
    return float(m), float(s)


def chain_marginal_at_sigma(sigma, ddpm):
    r"""The marginal coefficients (m, s) a chain family gives the noise
    level sigma = s/m between its grid indices:

    .. math:: m = 1/\sqrt{1 + \sigma^2},\ s = \sigma m \ \text{(DDPM, } m^2 + s^2 = 1),
              \qquad m = 1,\ s = \sigma \ \text{(SMLD)}.

    The one rule behind a chain's fractional times, shared by the
    sigma-space samplers, the DPM-Solver family and the prediction adapters.
    """
    sigma = np.asarray(sigma, np.float64)
    if ddpm:
        m = 1.0 / np.sqrt(1.0 + sigma * sigma)
        return m, sigma * m
    return np.ones_like(sigma), sigma.copy()
